"""Drives the rating app headless in its own process: `python tests/tui_driver.py DB RATER KEYS... [--hold]
[--overlap K] [--until-done]`.

Used by tests that need a separate process (kill -9, two teachers at once). Prints READY after each key group;
with --until-done it presses 1 and space until the summary shows, then prints the number of items it rated.
"""

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: make `tests` importable

from rater.store.engine import create_store_engine, database_url, session_scope  # noqa: E402
from rater.store.study import Study  # noqa: E402
from tests.conftest import build_app, press  # noqa: E402


async def drive(args: argparse.Namespace) -> None:
    engine = create_store_engine(database_url(args.db))
    if args.overlap is not None:  # the study's K, as `rater rate --overlap K` sets it
        with session_scope(engine) as session:
            Study().follow(session, args.overlap)
    app = build_app(engine, rater_name=args.rater)
    async with app.run_test(size=(100, 30)) as pilot:
        for group in args.keys:
            await press(pilot, *group.split(","))  # waits until the save has finished
            print("READY", flush=True)
        if args.until_done:
            await press(pilot)  # the first item (or the summary) on screen
            while app.shown is not None:
                await press(pilot, "1", "space")
            print(f"RATED {app.tally.items}", flush=True)
        if args.hold:
            await asyncio.sleep(3600)  # wait to be killed


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("rater")
    parser.add_argument("keys", nargs="*")
    parser.add_argument("--hold", action="store_true")
    parser.add_argument("--overlap", type=int)
    parser.add_argument("--until-done", action="store_true")
    asyncio.run(drive(parser.parse_args()))
