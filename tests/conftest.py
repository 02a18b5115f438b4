"""Shared fixtures: an isolated database per test, the CLI, and the shared data folder."""

import os
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from rater.cli import app
from rater.store.engine import create_store_engine, database_url

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RATER_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_file(relative: str) -> Path:
    """A file of ../shared/data (or $RATER_SHARED_DATA); a clear failure, never a silent skip, when absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.fail(f"Shared data file {path} is missing: put ../shared/data beside the project "
                    "or set RATER_SHARED_DATA to its location.", pytrace=False)
    return path


@pytest.fixture
def db_path(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "rater.db"
    monkeypatch.setenv("RATER_DB", str(path))
    return path


@pytest.fixture
def engine(db_path):
    engine = create_store_engine(database_url(str(db_path)))
    yield engine
    engine.dispose()


class Cli:
    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True):
        result = self.runner.invoke(app, ["--db", str(self.db_path), *map(str, args)])
        if ok and result.exit_code != 0:
            raise AssertionError(f"rater {' '.join(map(str, args))} exited {result.exit_code}:\n"
                                 f"{result.output}\n{result.stderr if result.stderr_bytes else ''}\n{result.exception!r}")
        return result


@pytest.fixture
def cli(db_path) -> Cli:
    return Cli(db_path)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny Mistral-architecture model and BPE tokenizer built offline, shared by the whole session."""
    from training.tiny import build_tiny_model
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def swequad_files() -> list[Path]:
    return [shared_file(f"swequad-mc/{name}.json") for name in ("training", "dev", "test")]


class FakeClock:
    """The rating screen's clock, moved by the tests: `press` moves it 1 s before each key, so every key comes
    after the screen's minimum time on an item (a double tap is tested with the real clock)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def build_app(engine, **kwargs):
    """The rating screen as the CLI builds it, in English, with a FakeClock unless the test passes a clock."""
    from rater.tui.app import build_app as build

    kwargs.setdefault("clock", FakeClock())
    kwargs.setdefault("language", "en")
    return build(engine, **kwargs)


def settled(app) -> bool:
    """Whether the rating app is at rest: an item drawn or the summary on screen, and no save running."""
    if not app.is_running:
        return True
    drawn = app.shown is not None and app.shown.drawn_at is not None
    at_rest = drawn or type(app.screen).__name__.split("_")[0] in ("SummaryScreen", "ErrorScreen", "HistoryScreen")
    return at_rest and not app.saving


def run_driver(db, rater: str, *groups: str, hold: bool = False, options: tuple[str, ...] = ()):
    """The rating screen in a process of its own (tests/tui_driver.py), pressing the key groups."""
    import subprocess
    import sys

    args = [sys.executable, str(ROOT / "tests" / "tui_driver.py"), str(db), rater, *groups, *options]
    return subprocess.Popen(args + (["--hold"] if hold else []), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


async def press(pilot, *keys: str, timeout: float = 30.0) -> None:
    """Press each key a (fake) second after the last, waiting after each until the app has saved and shows the next
    item (saves run in a worker thread); with no keys, wait until it is at rest."""
    for key in keys:
        await settle(pilot, timeout)  # an item on screen (no key acts on one still on its way)
        clock = getattr(pilot.app, "clock", None)
        if hasattr(clock, "advance"):
            clock.advance(1.0)
        await pilot.press(key)
    await settle(pilot, timeout)


async def settle(pilot, timeout: float = 30.0) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not settled(pilot.app):
        assert time.monotonic() < deadline, "the rating app did not settle"
        await asyncio.sleep(0.005)
    await pilot.pause()


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server, started from the machine's server binaries for this test session."""
    from tests.pg_server import find_bin_dir, start_server

    if find_bin_dir() is None:
        pytest.skip("no PostgreSQL server binaries on this machine (`make test` installs Debian's postgresql "
                    "package where it can; or set RATER_PG_BIN)")
    server = start_server()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server, request, monkeypatch) -> str:
    """A new, empty database on the test server; its URL (also in RATER_DB)."""
    import re
    import secrets

    name = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40] + "_" + secrets.token_hex(3)
    url = pg_server.create_database(name)
    monkeypatch.setenv("RATER_DB", url)
    return url


def import_items(cli, tmp_path, count: int, per_item: int = 3, **fields) -> Path:
    """Import `count` items with `per_item` human distractors each (text unique per item)."""
    import json

    path = tmp_path / f"items-{count}.jsonl"
    rows = [{"context": f"Text {n}.", "question": f"Fråga {n}?", "answer": f"svar {n}",
             "distractors": [f"fel {n}.{k}" for k in range(per_item)], **fields} for n in range(count)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    cli("import", path)
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request, tmp_path, monkeypatch) -> str:
    """The URL of a new database on each backend: a SQLite file, then a database on the test PostgreSQL server."""
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    url = database_url(str(tmp_path / "rater.db"))
    monkeypatch.setenv("RATER_DB", url)
    return url


def tallies(session) -> tuple[list, list]:
    """The teachers' tallies (rater.store.tally) as sorted rows."""
    from rater.store.tables import SourceTally, TeacherTally

    t, s = TeacherTally, SourceTally
    return (sorted(tuple(r) for r in session.execute(select(
                t.scope, t.item_id, t.rater_id, t.rated, t.accepted, t.seconds, t.beyond, t.agree_accept,
                t.accept_reject, t.reject_accept, t.agree_reject)).all()),
            sorted(tuple(r) for r in session.execute(select(s.scope, s.item_id, s.source, s.rated, s.accepted)).all()))


def tallies_recounted(session) -> tuple[list, list]:
    """The tallies as a count from scratch gives them, item by item and all at once (rolled back after)."""
    from sqlalchemy import delete

    from rater.store.tables import EvalSet, Item, SourceTally, TeacherTally
    from rater.store.tally import retally, retally_all

    session.execute(delete(TeacherTally))
    session.execute(delete(SourceTally))
    items = list(session.execute(select(Item.id)).scalars())
    retally(session, {None: items, **{set_id: items for set_id in session.execute(select(EvalSet.id)).scalars()}})
    fresh = tallies(session)
    retally_all(session)
    assert tallies(session) == fresh
    session.rollback()
    return fresh
