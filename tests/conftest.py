"""Shared fixtures: an isolated database per test, the CLI, and the shared data folder."""

import os
from pathlib import Path

import pytest
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


def settled(app) -> bool:
    """Whether the rating app is at rest: an item or the summary on screen, no save running, no keys waiting."""
    if not app.is_running:
        return True
    at_rest = app.shown is not None or type(app.screen).__name__ in ("SummaryScreen", "ErrorScreen")
    return at_rest and not app.saving and not app.typeahead


async def press(pilot, *keys: str, timeout: float = 30.0) -> None:
    """Press keys, then wait until the app has saved and shows the next item (saves run in a worker thread)."""
    import asyncio
    import time

    await pilot.press(*keys)
    deadline = time.monotonic() + timeout
    while not settled(pilot.app):
        assert time.monotonic() < deadline, "the rating app did not settle"
        await asyncio.sleep(0.005)
    await pilot.pause()
