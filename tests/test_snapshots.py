"""Snapshot tests of the screens at a fixed terminal size (update with `pytest --snapshot-update`)."""

import pytest

from rater.raters.runner import Queue
from rater.tui.app import build_app
from tests.conftest import shared_file

SIZE = (100, 30)


@pytest.fixture
def demo_app(cli, engine):
    cli("demo")
    return build_app(engine, rater_name="anna")


def test_rating_screen(demo_app, snap_compare):
    assert snap_compare(demo_app, press=["1", "3"], terminal_size=SIZE)


def test_rating_screen_with_reason_and_context(demo_app, snap_compare):
    assert snap_compare(demo_app, press=["space", "2", "r", "3", "2", "c"], terminal_size=SIZE)


def test_instructions_screen(demo_app, snap_compare):
    assert snap_compare(demo_app, press=["question_mark"], terminal_size=SIZE)


def test_summary_screen(demo_app, snap_compare):
    assert snap_compare(demo_app, press=["1", "space"] * 12, terminal_size=SIZE)


def test_blind_evaluation_screen(cli, engine, snap_compare):
    cli("import", shared_file("published-thesis-samples/evaluation_sample.json"))
    app = build_app(engine, rater_name="lisa", queue=Queue(eval_set="evaluation_sample"), blind=True)
    assert snap_compare(app, press=["2"], terminal_size=SIZE)


def test_too_small_terminal(demo_app, snap_compare):
    assert snap_compare(demo_app, terminal_size=(50, 12))
