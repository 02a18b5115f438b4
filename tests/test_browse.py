"""The browse screen: raters side by side, the disagreement filter, rationales."""

import asyncio

import pytest

from rater.tui.app import build_app
from rater.tui.browse import build_browse_app
from tests.conftest import press


@pytest.fixture
def rated(cli, engine):
    cli("demo")
    cli("judge", "--rater", "rules")
    return engine


async def rate_all_accepting_first_two(engine):
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=(100, 30)) as pilot:
        await press(pilot, *["1", "2", "space"] * 12)


async def test_browse_shows_raters_side_by_side_and_filters_disagreements(rated):
    await rate_all_accepting_first_two(rated)
    app = build_browse_app(rated)
    async with app.run_test(size=(120, 32)) as pilot:
        table = app.query_one("DataTable")
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[-2:] == ["anna", "rules"]
        assert table.row_count == 4
        assert "passes every rule" in str(app.query_one("#rationale").render())
        await pilot.press("d")
        # anna rejected distractors 3 and 4 of every item, which rules accepts unless a rule fired: all 12 disagree
        assert len(app.ids) == 12
        await pilot.press("right", "right")
        assert str(app.query_one("#status").render()).startswith("3 / 12")


async def test_browse_only_selected_raters_and_no_disagreement(rated):
    app = build_browse_app(rated, rater_names=["rules"])
    async with app.run_test(size=(120, 32)) as pilot:
        assert [str(c.label) for c in app.query_one("DataTable").columns.values()][-1] == "rules"
        await pilot.press("d")
        assert app.ids == [] and "No rated items match" in str(app.query_one("#status").render())


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
        assert [str(c.label) for c in browse.query_one("DataTable").columns.values()][-1] == "lisa"
        assert browse.query_one("DataTable").row_count == 4  # the set's four slots, not the item's other distractors
    everything = build_browse_app(engine)
    async with everything.run_test(size=(120, 32)):
        assert len(everything.ids) == 5 and "rules" in [str(c.label) for c in
                                                         everything.query_one("DataTable").columns.values()]
