"""The browse screen: raters side by side, the disagreement filter, rationales."""

import asyncio

import pytest

from rater.tui.browse import build_browse_app
from tests.conftest import build_app, press


@pytest.fixture
def rated(cli, engine):
    cli("demo")
    cli("judge", "--rater", "rules")
    return engine


async def rate_all_accepting_first_two(engine):
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=(100, 30)) as pilot:
        await press(pilot, *["1", "2", "space"] * 12)


def shown(app) -> str:
    """The ratings table as the screen lays it out (wrapped at the widget's width), in one line of words."""
    from rich.console import Console

    widget = app.query_one("#ratings")
    console = Console(width=widget.content_region.width, record=True, file=open("/dev/null", "w"))
    console.print(widget.content)
    return " ".join(console.export_text().split())


async def test_browse_shows_raters_side_by_side_and_filters_disagreements(rated):
    await rate_all_accepting_first_two(rated)
    app = build_browse_app(rated)
    async with app.run_test(size=(120, 32)) as pilot:
        assert app.raters == ["anna", "rules"]
        assert shown(app).count("anna:") == 4 and "passes every rule" in shown(app)
        await pilot.press("d")
        # anna rejected distractors 3 and 4 of every item, which rules accepts unless a rule fired: all 12 disagree
        assert len(app.ids) == 12
        await pilot.press("right", "right")
        assert str(app.query_one("#status").render()).startswith("3 / 12")


async def test_browse_only_selected_raters_and_no_disagreement(rated):
    app = build_browse_app(rated, rater_names=["rules"])
    async with app.run_test(size=(120, 32)) as pilot:
        assert app.raters == ["rules"]
        await pilot.press("d")
        assert app.ids == [] and "No rated items match" in str(app.query_one("#status").render())


async def test_six_raters_and_a_long_distractor_fit_and_the_arrows_still_move(cli, engine):
    """A table wider than the terminal used to take the arrow keys (scrolling sideways), so Next did nothing."""
    import json

    from sqlmodel import Session

    from rater.core.domain import Judgement
    from rater.store.ratings import get_or_create_rater, save_judgements
    from rater.store.tables import Distractor
    long_text = "en mycket lång distraktor " * 40
    path = cli.db_path.parent / "items.jsonl"
    path.write_text("".join(json.dumps({"context": "T.", "question": f"F{n}?", "answer": "s",
                                        "distractors": [long_text + str(n), "kort"]}) + "\n" for n in range(3)))
    cli("import", path)
    with Session(engine) as session:
        rows = session.execute(__import__("sqlalchemy").select(Distractor.id, Distractor.item_id)).all()
        for k in range(6):
            rater = get_or_create_rater(session, name=f"teacher-with-a-long-name-{k}", kind="human")
            for item_id in {i for _, i in rows}:
                save_judgements(session, rater_id=rater.id, item_id=item_id, judgements=[
                    Judgement(d, k % 2 == 0, rationale="because " * 30) for d, i in rows if i == item_id])
        session.commit()
    app = build_browse_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        assert len(app.raters) == 6 and all(f"teacher-with-a-long-name-{k}:" in shown(app) for k in range(6))
        assert "kort" in shown(app) and shown(app).count("distraktor") == 40  # wrapped whole, not cut off
        await pilot.press("down", "down", "pagedown")  # the body scrolls ...
        await pilot.press("right")  # ... and the arrow still moves to the next item
        assert str(app.query_one("#status").render()).startswith("2 / 3")
        await pilot.press("left")
        assert str(app.query_one("#status").render()).startswith("1 / 3")


def test_browse_snapshot(rated, snap_compare):
    assert snap_compare(build_browse_app(rated), terminal_size=(120, 32))


async def test_browse_a_set_shows_that_sets_own_judgements(cli, engine):
    from rater.raters.runner import Queue
    from tests.conftest import shared_file

    cli("import", shared_file("published-thesis-samples/evaluation_sample.json"))
    await asyncio.to_thread(cli, "judge", "--rater", "rules")  # preference ratings of every distractor
    app = build_app(engine, rater_name="lisa", queue=Queue(eval_set="evaluation_sample"), blind=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await press(pilot, "1", "space", "2", "space")  # two items rated in the set
    browse = build_browse_app(engine, eval_set="evaluation_sample")
    async with browse.run_test(size=(120, 32)):
        assert len(browse.ids) == 2  # only the items the set's judgements cover
        assert browse.raters == ["lisa"]
        assert shown(browse).count("lisa:") == 4  # the set's four slots, not the item's other distractors
    everything = build_browse_app(engine)
    async with everything.run_test(size=(120, 32)):
        assert len(everything.ids) == 5 and "rules" in everything.raters
