"""Drives the rating app headless in its own process: `python tests/tui_driver.py DB RATER KEYS...`.

Used by tests that need a separate process (kill -9, two teachers at once). Prints READY after each key group.
"""

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: make `tests` importable

from rater.store.engine import create_store_engine, database_url  # noqa: E402
from rater.tui.app import build_app  # noqa: E402
from tests.conftest import press  # noqa: E402


async def drive(db: str, rater: str, groups: list[str], hold: bool) -> None:
    app = build_app(create_store_engine(database_url(db)), rater_name=rater)
    async with app.run_test(size=(100, 30)) as pilot:
        for group in groups:
            await press(pilot, *group.split(","))  # waits until the save has finished
            print("READY", flush=True)
        if hold:
            await asyncio.sleep(3600)  # wait to be killed


if __name__ == "__main__":
    db, rater, *rest = sys.argv[1:]
    hold = rest[-1] == "--hold"
    asyncio.run(drive(db, rater, rest[:-1] if hold else rest, hold))
