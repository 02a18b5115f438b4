"""Snapshot tests of the screens at a fixed terminal size (update with `pytest --snapshot-update`)."""

import pytest

from rater.raters.runner import Queue
from tests.conftest import build_app, press, shared_file

SIZE = (100, 30)


@pytest.fixture
def demo_app(cli, engine):
    cli("demo")
    return build_app(engine, rater_name="anna")


def pressing(*keys: str):
    """Keys pressed before the screenshot, waiting for saves to finish (they run in a worker thread)."""
    async def run_before(pilot) -> None:
        await press(pilot)  # the first item is on screen before any key
        await press(pilot, *keys)
    return run_before


def test_rating_screen(demo_app, snap_compare):
    assert snap_compare(demo_app, run_before=pressing("1", "3"), terminal_size=SIZE)


def test_rating_screen_with_reason_and_context(demo_app, snap_compare):
    assert snap_compare(demo_app, run_before=pressing("space", "2", "r", "3", "2", "c"), terminal_size=SIZE)


def test_instructions_screen(demo_app, snap_compare):
    assert snap_compare(demo_app, run_before=pressing("question_mark"), terminal_size=SIZE)


def test_summary_screen(demo_app, snap_compare):
    assert snap_compare(demo_app, run_before=pressing(*["1", "space"] * 12), terminal_size=SIZE)


def test_blind_evaluation_screen(cli, engine, snap_compare):
    cli("import", shared_file("published-thesis-samples/evaluation_sample.json"))
    app = build_app(engine, rater_name="lisa", queue=Queue(eval_set="evaluation_sample"), blind=True)
    assert snap_compare(app, run_before=pressing("2"), terminal_size=SIZE)


def test_too_small_terminal(demo_app, snap_compare):
    assert snap_compare(demo_app, run_before=pressing(), terminal_size=(50, 12))
