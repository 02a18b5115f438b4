"""Pilot tests of the rating screen: real key presses, then assertions on what the database holds."""

import html
import json
import os
import signal
import sqlite3
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from rater.raters.runner import Queue
from rater.store.engine import create_store_engine, database_url
from rater.store.items import ItemFilter
from rater.store.tables import Distractor, RaterRecord, Rating
from rater.tui.widgets import ContextPanel
from tests.conftest import build_app, press, run_driver

SIZE = (100, 30)


def ratings(engine, rater: str = "anna") -> dict[tuple[int, int], tuple[bool, str | None, int]]:
    """{(item id, the option's place on the rater's screen): (accepted, reason, revision)} of one rater: key n
    ticks the option at place n - 1."""
    with Session(engine) as session:
        rows = session.execute(select(Distractor.item_id, Rating.shown_position, Rating.accepted, Rating.reason,
                                      Rating.revision).join(Rating, Rating.distractor_id == Distractor.id)
                               .join(RaterRecord, RaterRecord.id == Rating.rater_id).where(RaterRecord.name == rater)).all()
    return {(i, p): (a, r, v) for i, p, a, r, v in rows}


def all_ratings(engine, rater: str = "anna") -> list[bool]:
    with Session(engine) as session:
        return list(session.execute(select(Rating.accepted).join(RaterRecord).where(RaterRecord.name == rater)).scalars())


async def until(pilot, condition, timeout: float = 30.0) -> None:
    """Wait (letting the app run) until `condition()` holds; fail after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await pilot.pause(0.02)


def shown_question(app) -> str:
    return str(app.query_one("#question").render())


async def test_ticks_and_submit_are_saved(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "1", "3", "space", "2", "2", "4", "enter")
        assert "Vasaloppet" in shown_question(app) or "långt" in shown_question(app)
    saved = ratings(engine)
    assert {k: v[0] for k, v in saved.items()} == {
        (1, 0): True, (1, 1): False, (1, 2): True, (1, 3): False,
        (2, 0): False, (2, 1): False, (2, 2): False, (2, 3): True}


async def test_escape_keeps_everything_and_resume_starts_at_first_unrated(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "1", "space", "space", "1")  # third item ticked but not submitted
        await press(pilot, "escape")
        assert app.return_code is not None or not app.is_running
    assert {k[0] for k in ratings(engine)} == {1, 2}
    again = build_app(engine, rater_name="anna")
    async with again.run_test(size=SIZE) as pilot:
        await press(pilot)
        assert "Hur långt är Vasaloppet?" == shown_question(again)
        status = str(again.query_one("#status").render())
        assert status.startswith("3 / 12") and "you accepted 12% so far" in status  # 1 of 8 ticked before


async def test_backspace_shows_saved_ticks_and_rerating_replaces(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "1", "2", "space", "backspace")
        assert "ekorren" in shown_question(app)
        assert app.shown.ticked == [True, True, False, False]
        await press(pilot, "2", "4", "space")
        assert "biblioteket" in shown_question(app)
    saved = ratings(engine)
    assert saved[(1, 1)] == (False, None, 2) and saved[(1, 3)] == (True, None, 2)
    assert saved[(1, 0)] == (True, None, 1) and saved[(1, 2)] == (False, None, 1)  # unchanged: no new revision


async def test_skip_leaves_item_unrated_and_it_returns_last(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "s")
        assert "biblioteket" in shown_question(app)
        await press(pilot, *["space"] * 11)
        assert "ekorren" in shown_question(app)
        assert 1 not in {k[0] for k in ratings(engine)}
        await press(pilot, "space")
    assert {k[0] for k in ratings(engine)} == set(range(1, 13))


async def test_reason_is_stored_with_a_rejection(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await press(pilot, "4", "r", "4", "4")  # tick 4, then reason for 4: "Identical" (un-ticks it)
        await press(pilot, "r", "2")
        assert not app._notifications  # the prompt asking for the number no longer covers the dialog
        await press(pilot, "6")
        await press(pilot, *"för lång", "enter")
        await press(pilot, "space")
    saved = ratings(engine)
    assert saved[(1, 3)][:2] == (False, "identical")
    assert saved[(1, 1)][:2] == (False, "för lång")


async def test_summary_after_last_item(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, *["1", "space"] * 12)
        await pilot.pause()
        assert "All 12 items are rated" in str(app.screen.query_one("#summary").render())
        await pilot.press("2", "3")  # nothing is left to rate: these keys are not kept for a later item
        await press(pilot, "backspace")  # back to the last item, as saved
        assert app.shown.ticked == [True, False, False, False]
    assert len(ratings(engine)) == 48


async def test_too_small_terminal_shows_a_message(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        assert app.query_one("#too-small").display and not app.query_one("#main").display
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert app.query_one("#main").display


async def test_item_without_distractors_is_skipped_with_notice(cli, engine, tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps({"context": "Tom.", "question": "Tom?", "answer": "ja", "distractors": []}) + "\n" +
                    json.dumps({"context": "Full.", "question": "Full?", "answer": "a", "distractors": ["b"]}) + "\n")
    cli("import", path)
    app = build_app(engine, rater_name="anna", queue=Queue())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        assert shown_question(app) == "Full?"
        assert any("without distractors" in n.message for n in app._notifications)


async def test_locked_database_keeps_ticks_and_retry_saves(cli, db_path):
    cli("demo")
    engine = create_store_engine(database_url(str(db_path)), busy_timeout_ms=100)
    app = build_app(engine, rater_name="anna")
    locker = sqlite3.connect(db_path, isolation_level=None)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await press(pilot, "1", "2")
        locker.execute("BEGIN EXCLUSIVE")
        await press(pilot, "space")
        assert any(n.message.startswith("Could not save: the database ") and "stayed locked by another program" in
                   n.message for n in app._notifications)
        assert app.shown.ticked == [True, True, False, False] and "ekorren" in shown_question(app)
        locker.execute("ROLLBACK")
        await press(pilot, "space")
        assert "biblioteket" in shown_question(app)
    assert {k: v[0] for k, v in ratings(engine).items()} == {(1, 0): True, (1, 1): True, (1, 2): False, (1, 3): False}


def test_kill_9_loses_nothing_submitted(cli, engine, db_path):
    cli("demo")
    process = run_driver(db_path, "anna", "1,space", "2,space", "3", hold=True)
    for _ in range(3):
        assert process.stdout.readline().strip() == "READY"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    saved = ratings(engine)
    assert {k[0] for k in saved} == {1, 2} and saved[(1, 0)][0] and saved[(2, 1)][0]


def test_two_teachers_at_once_on_one_file(cli, engine, db_path):
    cli("demo")
    keys = ["1,3,space"] * 12
    first, second = run_driver(db_path, "anna", *keys), run_driver(db_path, "bo", *keys)
    for process in (first, second):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    for rater in ("anna", "bo"):
        saved = ratings(engine, rater)
        assert len(saved) == 48
        assert sum(accepted for accepted, _, _ in saved.values()) == 24


async def test_blind_evaluation_hides_sources_and_opens_instructions(cli, engine):
    from tests.conftest import shared_file
    cli("import", shared_file("published-thesis-samples/evaluation_sample.json"))
    app = build_app(engine, rater_name="lisa", queue=Queue(eval_set="evaluation_sample"), blind=True,
                    show_instructions=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert type(app.screen).__name__.split("_")[0] == "InstructionsScreen"
        await press(pilot, "escape")
        screen = html.unescape(app.export_screenshot()).replace("\xa0", " ")  # all of it: status, options, footer
        assert "Vilket material kan tunnplåtslagaren" in screen or "Correct answer" in screen
        for label in ("human", "sft", "dpo", "dataset", "predict"):
            assert label not in screen
        await press(pilot, "1", "space")
    with Session(engine) as session:
        accepted = session.execute(select(Rating.accepted).join(RaterRecord).where(RaterRecord.name == "lisa")).scalars().all()
    assert len(accepted) == 4 and sum(accepted) == 1


def write_items(tmp_path, rows: list[dict]) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


async def test_an_item_with_twelve_distractors_is_rated_in_two_pages(cli, engine, tmp_path):
    base = {"context": "Anna bor i Lund.", "question": "Var bor Anna?", "answer": "i Lund"}
    rows = [base | {"source": s, "distractors": [f"i {s} {n}" for n in range(4)]} for s in ("human", "sft", "dpo")]
    cli("import", write_items(tmp_path, rows))
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot)
        assert "page 1/2" in str(app.query_one("#status").render())
        assert app.check_action("page", (1,)) is True  # the footer shows the page key
        await press(pilot, "1", "right", "1", "3")  # distractor 1 of page 1, distractors 10 and 12 of page 2
        assert "page 2/2" in str(app.query_one("#status").render())
        await press(pilot, "space")
        assert type(app.screen).__name__.split("_")[0] == "SummaryScreen"
    assert sorted(all_ratings(engine)) == [False] * 9 + [True] * 3
    again = build_app(engine, rater_name="anna")
    async with again.run_test(size=SIZE) as pilot:
        await press(pilot)
        assert type(again.screen).__name__.split("_")[0] == "SummaryScreen"  # nothing comes back


async def test_progress_counts_the_queue_filter_once_per_item(cli, engine, tmp_path):
    rows = [{"context": f"T {n}.", "question": f"F {n}?", "answer": f"s {n}", "distractors": ["a", "b"],
             "split": "test" if n < 3 else "train"} for n in range(5)]
    rows.append(rows[0] | {"source": "sft", "distractors": ["c"]})  # item 1 also has an sft distractor
    cli("import", write_items(tmp_path, rows))
    app = build_app(engine, rater_name="anna", queue=Queue(ItemFilter(split="train")))
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "space")  # one train item rated
    app = build_app(engine, rater_name="anna", queue=Queue(ItemFilter(split="test")))
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot)
        assert str(app.query_one("#status").render()).startswith("1 / 3")
        await press(pilot, "space")
        assert str(app.query_one("#status").render()).startswith("2 / 3")


async def test_a_reason_request_is_cancelled_by_any_other_key(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "r", "space", "1")
        assert type(app.screen).__name__.split("_")[0] != "ReasonScreen" and app.shown.ticked[0] is True
        await press(pilot, "r", "x", "2")
        assert type(app.screen).__name__.split("_")[0] != "ReasonScreen" and app.shown.ticked[1] is True


async def test_a_save_waiting_on_a_lock_does_not_freeze_the_screen(cli, db_path):
    cli("demo")
    engine = create_store_engine(database_url(str(db_path)), busy_timeout_ms=3000)
    locker = sqlite3.connect(db_path, isolation_level=None)
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "1")
        locker.execute("BEGIN EXCLUSIVE")
        app.clock.advance(1)
        await pilot.press("space", "c")  # the context key is handled while the save waits for the lock
        await until(pilot, lambda: "saving…" in str(app.query_one("#status").render()))  # after 0.15 s
        assert app.saving
        assert app.query_one(ContextPanel).expanded
        await pilot.press("2")  # typed before the next item is shown: it ticks nothing there
        locker.execute("ROLLBACK")
        await press(pilot)
        assert "biblioteket" in shown_question(app) and app.shown.ticked == [False, False, False, False]
    assert ratings(engine)[(1, 0)][0] is True


async def test_any_store_error_on_save_keeps_the_ticks(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await press(pilot, "1", "2")
        with engine.begin() as connection:  # the item's distractor vanishes: the save breaks a foreign key
            connection.exec_driver_sql(f"DELETE FROM distractor WHERE id = {app.shown.item.distractors[3].id}")
        await press(pilot, "space")
        said = [n.message for n in app._notifications if "Could not save" in n.message]
        assert said == ["Could not save: the database refused them. Your ticks are kept; press space to try again."]
        assert "FOREIGN KEY" not in said[0].upper()  # the database's own words are for the organizer, not the teacher
        assert app.shown.ticked == [True, True, False, False] and "ekorren" in shown_question(app)
    assert ratings(engine) == {}


async def test_blind_evaluation_collects_its_own_judgements(cli, engine):
    from tests.conftest import shared_file
    cli("import", shared_file("published-thesis-samples/evaluation_sample.json"))
    preference = build_app(engine, rater_name="lisa")
    async with preference.run_test(size=SIZE) as pilot:
        await press(pilot, *["1", "space"] * 5)  # lisa rates every distractor in preference mode
    assert "evaluation_sample: 5 items; not rated yet" in cli("eval", "list").output
    blind = build_app(engine, rater_name="lisa", queue=Queue(eval_set="evaluation_sample"), blind=True)
    async with blind.run_test(size=SIZE) as pilot:
        await press(pilot)
        assert str(blind.query_one("#status").render()).startswith("1 / 5")  # nothing counts as done
        await press(pilot, "2", "space")
    assert "evaluation_sample: 5 items; lisa 1/5" in cli("eval", "list").output
    with Session(engine) as session:
        scopes = session.execute(select(Rating.eval_set_id).join(RaterRecord).where(RaterRecord.name == "lisa")).scalars().all()
    assert scopes.count(None) == len(scopes) - 4 and len(set(scopes)) == 2


async def test_an_evaluation_item_with_one_text_twice_from_one_source_can_be_submitted(cli, engine, tmp_path):
    record = {"context": "Anna bor i Lund.", "question": "Var bor Anna?", "answer": "i Lund",
              "distractors": ["i Malmö", "i Malmö", "i Umeå", "i Malmö"],
              "sources": ["dataset", "dataset", "./data/predict_sft.jsonl", "./data/predict_sft.jsonl"]}
    path = tmp_path / "evalset.json"
    path.write_text(json.dumps([record]))
    cli("import", path)
    app = build_app(engine, rater_name="lisa", queue=Queue(eval_set="evalset"), blind=True)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await press(pilot, "1", "space")
        assert type(app.screen).__name__.split("_")[0] == "SummaryScreen"
    assert sorted(all_ratings(engine, "lisa")) == [False, False, True]


async def test_keys_typed_while_the_next_item_is_on_its_way_do_nothing(cli, engine):
    """After a save, the next item may still be on its way to the screen (a fast typist, or a busy machine): keys
    typed then act on nothing, so they can never tick, save or skip an item the teacher has not seen."""
    import asyncio

    cli("demo")
    app = build_app(engine, rater_name="anna")
    present = app.present
    app.present = lambda item: app.set_timer(0.5, lambda: present(item))  # every item reaches the screen late
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot)
        await press(pilot, "1", "space")  # (press waits for the next item)
        app.clock.advance(5)
        await pilot.press("space")
        while not (app.rater.waiting and app.shown is None and not app.saving):  # saved; the next item not shown
            await asyncio.sleep(0.005)
        app.clock.advance(5)
        await pilot.press("2", "space", "s")  # typed before the third item arrives
        await press(pilot)
        assert "Vasaloppet" in shown_question(app) or "långt" in shown_question(app)  # the third item, untouched
        assert app.shown.ticked == [False, False, False, False]
    assert {k[0] for k in ratings(engine)} == {1, 2}
    assert {k: v[0] for k, v in ratings(engine).items() if v[0]} == {(1, 0): True}
