"""A teacher can look back (issue 27): their own history in the screen, Backspace across restarts, skipped items
counted and listed, changes through the one save path, blind items without sources, K exact under an overlap."""

import asyncio
import json
import re

from sqlalchemy import func, select
from sqlmodel import Session

from rater.raters.runner import Queue
from rater.store.study import Study
from rater.store.tables import Distractor, Item, Lease, RaterRecord, Rating, RatingHistory
from tests.conftest import build_app, press, settle, shared_file
from tests.test_screen_integrity import screen_text, toasts

SIZE = (100, 30)


def saved(engine, rater: str = "anna") -> dict[int, dict[int, tuple[bool, int]]]:
    """{item id: {shown position: (accepted, revision)}}."""
    with Session(engine) as session:
        rows = session.execute(select(Rating.item_id, Rating.shown_position, Rating.accepted, Rating.revision)
                               .join(RaterRecord).where(RaterRecord.name == rater)).all()
    found: dict[int, dict[int, tuple[bool, int]]] = {}
    for item, position, accepted, revision in rows:
        found.setdefault(item, {})[position] = (accepted, revision)
    return found


def history_rows(app) -> list[str]:
    options = app.screen.query_one("#history-list")
    return [str(options.get_option_at_index(n).prompt) for n in range(options.option_count)]


async def test_an_item_rated_before_a_restart_is_corrected_from_the_history(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "1", "space", "2", "space", "3", "space")
    again = build_app(engine, rater_name="anna")
    async with again.run_test(size=SIZE) as pilot:
        await press(pilot, "h")
        assert type(again.screen).__name__.split("_")[0] == "HistoryScreen"
        await pilot.pause(0.3)
        listed = history_rows(again)
        assert len(listed) == 3 and "ekorren" in listed[-1]  # latest first: item 1 at the end
        await press(pilot, *"ekorr")  # filter by text
        await pilot.pause(0.3)
        assert len(history_rows(again)) == 1
        await press(pilot, "enter", "enter")  # to the list, then open it
        await settle(pilot)
        assert again.shown.item.id == 1 and again.shown.ticked == [True, False, False, False]
        await press(pilot, "1", "4", "space")  # changed: untick 1, tick 4
        assert again.shown.item.id == 4  # back where the teacher was
    items = saved(engine)
    assert items[1] == {0: (False, 2), 1: (False, 1), 2: (False, 1), 3: (True, 2)}
    with Session(engine) as session:  # history rows only for the two judgements that changed
        assert session.execute(select(func.count()).select_from(RatingHistory)).scalar() == 2


async def test_backspace_goes_to_the_previous_rated_item_across_restarts(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "1", "space", "2", "space")
    again = build_app(engine, rater_name="anna")
    async with again.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert again.shown.item.id == 3
        await press(pilot, "backspace")
        assert again.shown.item.id == 2 and again.shown.ticked == [False, True, False, False]
        await press(pilot, "backspace")
        assert again.shown.item.id == 1
        await press(pilot, "space", "space")  # forward again, unchanged
        assert again.shown.item.id == 3


async def test_skipped_items_are_counted_and_listed_at_the_end_where_one_can_be_opened(cli, engine, tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps({"context": "T.", "question": f"Fråga {n}?", "answer": f"s {n}",
                                        "distractors": [f"d {n}"]}) + "\n" for n in range(3)))
    cli("import", path)
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "s", "s")
        assert "2 skipped, they come back at the end" in str(app.query_one("#status").render())
        await press(pilot, "space")  # item 3; then the two skipped come back once more
        assert app.shown.item.question == "Fråga 0?"
        await press(pilot, "s", "s")  # skipped again: they do not cycle for ever
        assert type(app.screen).__name__.split("_")[0] == "SummaryScreen"
        assert "Skipped twice (2)" in screen_text(app) and "Fråga 1?" in screen_text(app)
        assert "1 items are rated; 2 you skipped twice are not rated yet" in screen_text(app)
        assert "All 3 items are rated" not in screen_text(app)
        await press(pilot, "down", "enter")  # open the second one from the list
        await settle(pilot)
        assert app.shown.item.question == "Fråga 1?"
        await press(pilot, "1", "space")
        assert type(app.screen).__name__.split("_")[0] == "SummaryScreen" and "Skipped twice (1)" in screen_text(app)
    assert set(saved(engine)) == {2, 3}


async def test_a_blind_items_history_shows_no_source(cli, engine):
    cli("import", shared_file("published-thesis-samples/evaluation_sample.json"))
    app = build_app(engine, rater_name="lisa", queue=Queue(eval_set="evaluation_sample"), blind=True)
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "1", "space", "h")
        await pilot.pause(0.3)
        listed = " ".join(history_rows(app))
        assert "1/4 accepted" in listed
        await press(pilot, "enter", "enter")
        await settle(pilot)
        text = screen_text(app)
        for label in ("human", "sft", "dpo", "dataset", "predict"):
            assert label not in listed and label not in text
        assert app.shown.ticked.count(True) == 1  # the set's own judgements, reopened in the set


async def test_with_overlap_2_reopening_ones_own_item_keeps_k_exact(cli, engine):
    cli("demo")
    cli("study", "overlap", "2")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "1", "space")
        first = app.shown.item.id  # anna's second item is now held
        await press(pilot, "backspace")  # reopen her first
        with Session(engine) as session:
            held = set(session.execute(select(Lease.item_id).join(RaterRecord)
                                       .where(RaterRecord.name == "anna")).scalars())
        assert held == {first}  # reopening took no new hold
        await press(pilot, "2", "space")
    with Session(engine) as session:
        progress = Study().progress(session)
        teachers = dict(session.execute(select(Rating.item_id, func.count(func.distinct(Rating.rater_id)))
                                        .group_by(Rating.item_id)).all())
    assert progress.by_teacher == {"anna": 1} and progress.lacking == 12 and list(teachers.values()) == [1]


async def test_an_item_whose_distractors_changed_since_it_was_rated_shows_the_new_ones_marked(cli, engine):
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "1", "space", "space")
    await asyncio.to_thread(cli, "generate", "--generator", "baseline", "--source", "baseline", "--split", "all",
                            "--num", "1")
    again = build_app(engine, rater_name="anna")
    async with again.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert again.shown.item.id == 1 and len(again.shown.item.distractors) == 1  # its new distractor to rate
        await press(pilot, "h", *"ekorr")
        await pilot.pause(0.3)
        await press(pilot, "enter", "enter")  # opened from the history: the whole item as it is now
        assert again.shown.item.id == 1 and len(again.shown.item.distractors) == 5
        assert "New distractors were added" in toasts(again)
        assert re.search(r"\[new\]", screen_text(again))
        with Session(engine) as session:
            new = session.execute(select(Distractor.id).where(Distractor.item_id == 1,
                                                             Distractor.source == "baseline")).scalar_one()
        position = [d.id for d in again.shown.item.distractors].index(new)
        assert again.shown.ticked[position] is False  # new ones unticked


async def test_an_item_opened_from_the_history_that_was_deleted_is_said(cli, engine):
    from sqlalchemy import delete

    from rater.core.domain import Revisit
    from rater.store.tables import SourceTally, TeacherTally
    cli("demo")
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "1", "space")
        with Session(engine) as session:  # the organizer removes item 1 (its ratings and their tallies first)
            session.execute(delete(TeacherTally).where(TeacherTally.item_id == 1))
            session.execute(delete(SourceTally).where(SourceTally.item_id == 1))
            session.execute(delete(Rating).where(Rating.item_id == 1))
            session.execute(delete(Distractor).where(Distractor.item_id == 1))
            session.execute(delete(Item).where(Item.id == 1))
            session.commit()
        app.rater.decide(Revisit(1))  # (as the history screen does when the item is chosen)
        app.shown = None
        await settle(pilot)
        assert app.shown.item.id == 2 and "is gone" in toasts(app)
