"""The rules rater, the plugin registry, the runner's resume and its survival of kill -9."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from rater.core.domain import DistractorView, ItemView, Reason
from rater.raters import RATERS
from rater.raters.rules import RulesRater
from rater.raters.runner import run_rater
from rater.store.tables import Item, Rating


def rate(answer: str, *texts: str):
    item = ItemView(1, "ctx", "Hur lång är pojken?", answer,
                    tuple(DistractorView(i, t, "human") for i, t in enumerate(texts)))
    return asyncio.run(RulesRater().rate(item))


def test_rules_reject_with_reasons():
    judgements = rate("190 cm", "190 CM.", "  ", "ungefär 190 cm", "cm", "180 cm", "180  cm!", "1900 cm")
    verdicts = [(j.accepted, j.reason) for j in judgements]
    assert verdicts == [
        (False, Reason.identical), (False, Reason.unreasonable), (False, Reason.not_wrong),
        (False, Reason.not_wrong), (True, None), (False, Reason.identical), (True, None),
    ]
    assert judgements[5].rationale == "duplicates distractor 5"


def test_registry_lists_without_loading_and_names_unknown():
    assert "rules" in RATERS.installed()
    assert RATERS.load("rules") is RulesRater
    with pytest.raises(Exception, match="installed raters: .*rules"):
        RATERS.load("nope")


def test_runner_commits_and_resumes(cli, engine):
    cli("demo")
    first = asyncio.run(run_rater(RulesRater(), engine))
    assert (first.items, first.judgements) == (12, 48)
    again = asyncio.run(run_rater(RulesRater(), engine))
    assert again.items == 0
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(Rating)).scalar_one() == 48


def test_rerating_replaces_and_keeps_history(cli, engine):
    from rater.core.domain import Judgement
    from rater.store.ratings import get_or_create_rater, save_judgements
    from rater.store.tables import RatingHistory
    cli("demo")
    with Session(engine) as session:
        rater = get_or_create_rater(session, name="anna", kind="human")
        save_judgements(session, rater_id=rater.id, item_id=1, judgements=[Judgement(1, True)])
        save_judgements(session, rater_id=rater.id, item_id=1, judgements=[Judgement(1, False, reason="unreasonable")])
        session.commit()
        rating = session.execute(select(Rating)).scalar_one()
        assert (rating.accepted, rating.revision, rating.reason) == (False, 2, "unreasonable")
        history = session.execute(select(RatingHistory)).scalar_one()
        assert (history.accepted, history.revision) == (True, 1)


@pytest.mark.slow
def test_kill_9_during_judge_loses_no_committed_item(cli, engine, db_path, tmp_path):
    items = tmp_path / "many.jsonl"
    with items.open("w") as out:
        for n in range(10_000):
            out.write(json.dumps({"context": f"Text nummer {n}.", "question": f"Fråga {n}?", "answer": f"svar {n}",
                                  "distractors": [f"fel {n}", f"annat {n}", f"Svar {n}!", f"tredje {n}"]}) + "\n")
    cli("import", items)
    command = [sys.executable, "-m", "rater.cli", "--db", str(db_path), "judge", "--rater", "rules"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def rated_items() -> int:
        with Session(engine) as session:
            return session.execute(select(func.count(func.distinct(Rating.item_id)))).scalar_one()

    deadline = time.monotonic() + 60
    while rated_items() < 500 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = rated_items()
    assert 0 < done < 10_000, "the run should have been interrupted midway"
    with Session(engine) as session:
        per_item = session.execute(select(Rating.item_id, func.count()).group_by(Rating.item_id)).all()
        assert {n for _, n in per_item} == {4}, "every committed item has all four judgements"

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"rated {10_000 - done} items" in " ".join(rerun.stdout.split())
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(Rating)).scalar_one() == 40_000
        assert session.execute(select(func.count()).select_from(Item)).scalar_one() == 10_000
