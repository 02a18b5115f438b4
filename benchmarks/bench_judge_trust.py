"""A judge's trust, measured on simulated judges of known error and position bias (real loopback chat-completions
servers, tests/fake_openai.py) against simulated teachers (the latent labels), through the `rater` commands:

1. consistency recovers the bias put in: a judge that adds 2 points to whatever option it is shown first, and one
   without bias, each asked in 3 orders; the report's acceptance by position and share of distractors decided the
   same in every order;
2. `--orders auto` against 3 fixed orders: requests, and the share of distractors given the same decision;
3. a panel of three independent judges with 20 % errors each: its kappa against the teachers beside each member's.

Run: .venv/bin/python benchmarks/bench_judge_trust.py [--items 300]
"""

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sqlalchemy import select  # noqa: E402
from sqlmodel import Session  # noqa: E402
from synthetic import header  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from rater.cli import app  # noqa: E402
from rater.core.domain import Judgement  # noqa: E402
from rater.store.engine import create_store_engine, database_url  # noqa: E402
from rater.store.ratings import get_or_create_rater, save_judgements  # noqa: E402
from rater.store.tables import Distractor, JudgeRequest, RaterRecord, Rating  # noqa: E402
from tests.fake_openai import DISTRACTOR_LINE, FakeOpenAI  # noqa: E402

PER_ITEM = 4
ACCEPT_SHARE = 0.43  # the teachers' acceptance in the study this project follows (SPEC)


def flip(seed: str, rate: float) -> bool:
    return int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < rate


class Judge:
    """A simulated judge: 4 for a distractor it takes as acceptable, 1 otherwise, wrong on `error` of them (the same
    ones whatever the order), plus `bias` points for the option shown first and, per order, `jitter` noise."""

    def __init__(self, truth: dict[str, bool], name: str, error: float = 0.0, bias: float = 0.0,
                 jitter: float = 0.0) -> None:
        self.truth, self.name, self.error, self.bias, self.jitter = truth, name, error, bias, jitter

    def __call__(self, prompt: str) -> str:
        texts = [m.group(2) for m in DISTRACTOR_LINE.finditer(prompt.split("Distractors:", 1)[-1])]
        order = "|".join(texts)
        scores = []
        for place, text in enumerate(texts):
            good = self.truth[text] != flip(f"{self.name}:{text}", self.error)
            score = 4.0 if good else 1.0
            if place == 0:
                score += self.bias
            if self.jitter:
                score += random.Random(f"{self.name}:{order}:{text}").uniform(-self.jitter, self.jitter)
            scores.append(round(min(5.0, max(1.0, score)) * 2) / 2)  # judges answer in steps of 0.5
        return "Step by step.\n$" + json.dumps(scores) + "$"


def build(folder: Path, items: int) -> tuple[str, dict[str, bool]]:
    rows, truth = [], {}
    rng = random.Random(11)
    for n in range(items):
        texts = [f"alternativ {n}-{k}" for k in range(PER_ITEM)]
        for text in texts:
            truth[text] = rng.random() < ACCEPT_SHARE
        rows.append({"context": f"Text {n}.", "question": f"Fråga {n}?", "answer": f"svar {n}", "distractors": texts})
    (folder / "items.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    db = str(folder / "trust.db")
    rater(db, "import", str(folder / "items.jsonl"))
    engine = create_store_engine(database_url(db))
    with Session(engine) as session, session.begin():  # the teachers: the latent labels
        teacher = get_or_create_rater(session, name="teachers", kind="human").id
        for item_id, distractor_id, text in session.execute(select(Distractor.item_id, Distractor.id, Distractor.text)):
            save_judgements(session, rater_id=teacher, item_id=item_id, judgements=[Judgement(distractor_id, truth[text])])
    engine.dispose()
    return db, truth


def rater(db: str, *args: str) -> str:
    result = CliRunner().invoke(app, ["--db", db, *args])
    if result.exit_code != 0:
        raise SystemExit(f"rater {' '.join(args)} exited {result.exit_code}:\n{result.output}")
    return result.output


def run_judge(db: str, judge: Judge, *args: str) -> int:
    server = FakeOpenAI(default=judge).start()
    try:
        rater(db, "judge", "--model", "judge-model", "--base-url", server.url, "--api-key-env", "BENCH_KEY",
              "--as", judge.name, "--concurrency", "16", *args)
        return server.requests
    finally:
        server.stop()


def decisions(db: str, name: str) -> dict[int, bool]:
    engine = create_store_engine(database_url(db), upgrade=False)
    with Session(engine) as session:
        found = dict(session.execute(select(Rating.distractor_id, Rating.accepted).join(RaterRecord)
                                     .where(RaterRecord.name == name)).all())
    engine.dispose()
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=300)
    args = parser.parse_args()
    os.environ["BENCH_KEY"] = "test-key"  # the key the loopback server expects
    print(f"{header('judge trust')}; {args.items} items x {PER_ITEM} distractors")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RATER_HOME"] = tmp
        db, truth = build(Path(tmp), args.items)
        run_judge(db, Judge(truth, "fair", error=0.1), "--orders", "3")
        run_judge(db, Judge(truth, "biased", error=0.1, bias=2.0), "--orders", "3")
        judges = json.loads(rater(db, "report", "--format", "json"))["judges"]
        print("1. consistency (3 orders each; put in: the biased judge adds 2 points to the option shown first)")
        for name in ("fair", "biased"):
            c = judges[name]["consistency"]
            places = ", ".join(f"{p}: {v['accepted_rate']:.1%}" for p, v in c["by_position"].items())
            print(f"   {name:>6}: same decision in every order {c['orders']:.1%} of {c['orders_n']:,}; "
                  f"accepted by position {places}")

        fixed_judge, auto_judge = Judge(truth, "fixed3", error=0.1, jitter=1.0), Judge(truth, "auto", error=0.1, jitter=1.0)
        auto_judge.name = "fixed3"  # the same simulated judge (its errors and noise), stored under two names
        fixed = run_judge(db, fixed_judge, "--orders", "3")
        asked = run_judge(db, auto_judge, "--orders", "auto", "--as", "auto")
        a, b = decisions(db, "fixed3"), decisions(db, "auto")
        same = sum(a[d] == b[d] for d in a) / len(a)
        print(f"2. --orders auto: {asked:,} requests against {fixed:,} with 3 fixed orders ({1 - asked / fixed:.1%} fewer); "
              f"same decision on {same:.1%} of {len(a):,} distractors")

        for n in range(3):
            run_judge(db, Judge(truth, f"member{n}", error=0.2))
        rater(db, "panel", "create", "jury", "--judges", "member0,member1,member2")
        judges = json.loads(rater(db, "report", "--format", "json"))["judges"]
        kappas = {name: judges[name]["vs"]["teachers"]["kappa"] for name in ("member0", "member1", "member2", "jury")}
        print("3. three judges with 20 % errors each, and their panel (majority), kappa against the teachers: "
              + ", ".join(f"{name} {kappa:.3f}" for name, kappa in kappas.items()))
        engine = create_store_engine(database_url(db), upgrade=False)
        with Session(engine) as session:
            requests = session.execute(select(JudgeRequest.id)).all()
        engine.dispose()
        print(f"   ({len(requests):,} requests recorded in all)")


if __name__ == "__main__":
    main()
