"""The organizer's view at size: `rater study status` (the function behind it, and the /study page's JSON) on
100,000 items, 20 teachers and 1,000,000 ratings, on SQLite and PostgreSQL. Each item's three distractors are
rated by three teachers, every third item by a fourth; K = 3. Prints the median of 5 runs per backend.
Run: .venv/bin/python benchmarks/bench_status.py [--items 100000]
"""

import argparse
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sqlalchemy import insert  # noqa: E402
from sqlmodel import Session  # noqa: E402
from synthetic import header, on_each_backend  # noqa: E402

from rater.evaluation.status import study_status  # noqa: E402
from rater.store.engine import create_store_engine, session_scope  # noqa: E402
from rater.store.study import Study  # noqa: E402
from rater.store.tables import Context, Distractor, Item, RaterRecord, Rating  # noqa: E402
from rater.store.tally import retally_all  # noqa: E402

PER_ITEM = 3
TEACHERS = 20
CHUNK = 10_000


def build(url: str, items: int):
    engine = create_store_engine(url)
    now = datetime.now(timezone.utc)
    rng = random.Random(7)
    ratings = 0
    with engine.begin() as c:
        c.execute(insert(RaterRecord), [{"id": n, "name": f"teacher{n:02d}", "kind": "human", "created_at": now}
                                        for n in range(1, TEACHERS + 1)])
        for start in range(1, items + 1, CHUNK):
            ids = range(start, min(start + CHUNK, items + 1))
            c.execute(insert(Context), [{"id": i, "text": f"Kontext {i}.", "sha256": f"c{i}"} for i in ids])
            c.execute(insert(Item), [{"id": i, "context_id": i, "question": f"Fråga {i}?", "answer": f"svar {i}",
                                      "split": ("train", "dev", "test")[i % 3], "dataset": "bench", "record": str(i),
                                      "key": f"k{i}", "created_at": now} for i in ids])
            c.execute(insert(Distractor), [{"id": (i - 1) * PER_ITEM + p + 1, "item_id": i, "text": f"fel {i} {p}",
                                            "source": ("human", "sft", "dpo")[p], "position": p, "key": f"d{i}.{p}"}
                                           for i in ids for p in range(PER_ITEM)])
            rows = []
            for i in ids:
                teachers = {i % TEACHERS + 1, (i + 7) % TEACHERS + 1, (i + 13) % TEACHERS + 1}
                if i % 3 == 0:
                    teachers.add((i + 3) % TEACHERS + 1)
                for t in teachers:
                    seconds, at = rng.uniform(5, 60), now - timedelta(seconds=rng.uniform(0, 86400))
                    rows += [{"item_id": i, "distractor_id": (i - 1) * PER_ITEM + p + 1, "rater_id": t,
                              "accepted": rng.random() < 0.45, "seconds": seconds, "created_at": at, "updated_at": at}
                             for p in range(PER_ITEM)]
            c.execute(insert(Rating), rows)
            ratings += len(rows)
    with session_scope(engine) as session:
        Study().set_overlap(session, 3)
    # The ratings went in directly, not through a save: their tallies are counted here as a save counts them.
    began = time.perf_counter()
    with session_scope(engine) as session:
        retally_all(session)
    print(f"  tallies of {items:,} items counted in {time.perf_counter() - began:.1f} s")
    if engine.dialect.name == "postgresql":
        with engine.begin() as c:
            c.exec_driver_sql("ANALYZE")
    return engine, ratings


def run(label: str, url: str, items: int) -> None:
    began = time.perf_counter()
    engine, ratings = build(url, items)
    built = time.perf_counter() - began
    samples = []
    for _ in range(5):
        with Session(engine) as session:
            began = time.perf_counter()
            status = study_status(session)
            samples.append(time.perf_counter() - began)
    engine.dispose()
    assert status.items == items and len(status.teachers) == TEACHERS
    print(f"{label}: {items:,} items, {TEACHERS} teachers, {ratings:,} ratings (built in {built:.0f} s): "
          f"study status median {statistics.median(samples):.2f} s, slowest {max(samples):.2f} s "
          f"(done {status.done:,}, lacking {status.lacking:,})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()
    print(header("study status"))
    on_each_backend(lambda label, url_of: run(label, url_of("status"), args.items))


if __name__ == "__main__":
    main()
