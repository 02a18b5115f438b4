"""The teacher as a Rater: the one runner drives it through a presenter (here a scripted one, no screen), with
revisits, skipped items coming back, failed saves presented again, and stopping early."""

import asyncio
import sqlite3

from sqlalchemy import select
from sqlmodel import Session

from rater.core.domain import Judgement, Revisit
from rater.raters import RATERS
from rater.raters.human import HumanRater
from rater.raters.runner import run_rater
from rater.store.engine import create_store_engine, database_url
from rater.store.tables import RaterRecord, Rating, RatingHistory


class Script:
    """A presenter that answers every question with the next scripted step: 'tick' (accept the first
    distractor), 'none' (reject all), 'skip', 'back', 'stop', or 'leave' at the summary."""

    def __init__(self, rater: HumanRater, steps: list[str]) -> None:
        self.rater, self.steps, self.shown, self.failures = rater, list(steps), [], []
        rater.presenter = self

    def present(self, item) -> None:
        self.shown.append((item.question, len(item.previous), item.earlier))
        self._answer(item)

    def exhausted(self, left) -> None:
        self.shown.append(("summary", 0, 0))
        self._answer(None)

    def save_failed(self, item, error) -> None:
        self.failures.append(error.message)

    def beyond_k(self, item) -> None:
        self.failures.append("beyond K")

    def _answer(self, item) -> None:
        step = self.steps.pop(0) if self.steps else "stop"
        loop = asyncio.get_running_loop()
        if step == "stop" or (item is None and step == "leave"):
            loop.call_soon(self.rater.stop)
        elif step == "back":
            loop.call_soon(self.rater.decide, Revisit())
        elif step == "skip":
            loop.call_soon(self.rater.decide, [])
        else:
            first = min(d.id for d in item.distractors)  # the first stored (the screen's order is the teacher's own)
            judgements = [Judgement(d.id, step == "tick" and d.id == first) for d in item.distractors]
            loop.call_soon(self.rater.decide, judgements)


def run(engine, steps: list[str]) -> tuple[Script, object]:
    rater = HumanRater("anna")
    script = Script(rater, steps)
    summary = asyncio.run(run_rater(rater, engine, on_item=None))
    return script, summary


def accepted_first(engine) -> dict[int, bool]:
    with Session(engine) as session:
        rows = session.execute(select(Rating.item_id, Rating.accepted).join(RaterRecord).where(RaterRecord.name == "anna")
                               .order_by(Rating.distractor_id)).all()
    first: dict[int, bool] = {}
    for item_id, accepted in rows:
        first.setdefault(item_id, accepted)
    return first


def test_the_human_rater_is_an_installed_plugin():
    assert "human" in RATERS.installed() and RATERS.load("human") is HumanRater
    assert HumanRater.interactive and HumanRater.kind == "human"


def test_back_revisits_the_previous_item_with_its_saved_judgements_and_replaces_them(cli, engine):
    cli("demo")
    script, summary = run(engine, ["tick", "none", "back", "back", "none", "tick", "tick", "stop"])
    questions = [q for q, _, _ in script.shown]
    assert questions[:3] == [questions[0], questions[1], questions[2]]
    # back from item 3 shows item 2 (saved: 4 judgements, 1 earlier item), back again shows item 1 (0 earlier)
    assert script.shown[3] == (questions[1], 4, 1) and script.shown[4] == (questions[0], 4, 0)
    # forward again: item 2 as a revisit, then item 3 fresh
    assert script.shown[5] == (questions[1], 4, 1) and script.shown[6][0] == questions[2]
    assert accepted_first(engine) == {1: False, 2: True, 3: True}
    with Session(engine) as session:  # items 1 and 2 re-rated: history only for the one judgement that changed
        assert len(session.execute(select(RatingHistory)).all()) == 2
    assert summary.stopped and summary.items == 5


def test_a_skipped_item_comes_back_at_the_end(cli, engine):
    cli("demo")
    script, _ = run(engine, ["skip"] + ["none"] * 11 + ["tick", "leave"])
    questions = [q for q, _, _ in script.shown]
    assert questions[12] == questions[0] and questions[13] == "summary"
    assert len(accepted_first(engine)) == 12 and accepted_first(engine)[1] is True


def test_back_at_the_first_item_presents_it_again(cli, engine):
    cli("demo")
    script, _ = run(engine, ["back", "tick", "stop"])
    assert script.shown[0] == script.shown[1] and script.shown[0][2] == 0
    assert accepted_first(engine) == {1: True}


def test_back_from_the_summary_reopens_the_last_item(cli, engine, tmp_path):
    path = tmp_path / "two.jsonl"
    path.write_text('{"context": "T.", "question": "A?", "answer": "a", "distractors": ["x", "y"]}\n'
                    '{"context": "T.", "question": "B?", "answer": "b", "distractors": ["z"]}\n')
    cli("import", path)
    script, summary = run(engine, ["none", "none", "back", "tick", "leave"])
    assert [q for q, _, _ in script.shown] == ["A?", "B?", "summary", "B?", "summary"]
    assert script.shown[3][1] == 1 and accepted_first(engine)[2] is True and summary.stopped


def test_a_failed_save_presents_the_item_again_and_keeps_going(cli, db_path):
    cli("demo")
    engine = create_store_engine(database_url(str(db_path)), busy_timeout_ms=100)
    locker = sqlite3.connect(db_path, isolation_level=None)
    rater = HumanRater("anna")
    script = Script(rater, ["tick", "tick", "none", "stop"])
    present = script.present

    def lock_during_the_first_save(item):
        if not script.shown:
            locker.execute("BEGIN EXCLUSIVE")  # another program holds the database while the first item is saved
        elif len(script.shown) == 1:
            locker.execute("ROLLBACK")
        present(item)

    script.present = lock_during_the_first_save
    summary = asyncio.run(run_rater(rater, engine))
    assert len(script.failures) == 1 and "Could not save" in script.failures[0]
    assert script.shown[0][0] == script.shown[1][0] != script.shown[2][0]  # the same item again, then the next
    assert accepted_first(engine) == {1: True, 2: False} and summary.items == 2


def test_judge_refuses_the_interactive_rater(cli):
    cli("demo")
    result = cli("judge", "--rater", "human", ok=False)
    assert result.exit_code == 2 and "rater rate" in result.stderr
