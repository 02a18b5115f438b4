"""The browse screen: raters side by side, the disagreement filter, rationales."""

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
