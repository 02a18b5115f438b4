"""Rating-screen benchmark: drives the app with real key presses (Textual's pilot) on a database of 100,000 items.

Prints the start-up time to the first item on screen, and median / p95 of (a) a tick key: the action until the
options are updated, and (b) submit: the key's action until the next item is on the widgets (the save runs in a
worker thread in between). Times are taken inside the app, from the key's action to the end of the handler that
shows the result; the pilot's own idle waits are not part of them (they measure process CPU in 20 ms slices, which
says little about latency once work is spread over a thread). Run: .venv/bin/python benchmarks/bench_tui.py
"""

import asyncio
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from synthetic import ITEMS, build_synthetic

from rater.store.engine import create_store_engine
from rater.tui.app import build_app

ROUNDS = 200


def summary(values: list[float]) -> str:
    values = sorted(values)
    return f"median {statistics.median(values) * 1000:.2f} ms, p95 {values[int(0.95 * len(values)) - 1] * 1000:.2f} ms"


class Stopwatch:
    """Timestamps from inside the app: when a key's action starts, and when the next item has been shown."""

    def __init__(self, app) -> None:
        self.started, self.shown_at = 0.0, 0.0
        # on the class: Textual finds message handlers through the class, not the instance
        tick = "action_tick"
        for name, start, end in ((tick, True, True), ("action_submit", True, False),
                                 ("on_item_presented", False, True)):
            self._wrap(type(app), name, start, end)

    def _wrap(self, app_class, name: str, start: bool, end: bool) -> None:
        # on the class that defines it: Textual calls a handler of each class in the MRO that defines one, so a
        # wrapper set on the (per-language) subclass would run the handler twice
        cls = next(c for c in app_class.__mro__ if name in c.__dict__)
        original = cls.__dict__[name]

        def timed(app, *args):
            if start:
                self.started = time.perf_counter()
            result = original(app, *args)
            if end:
                self.shown_at = time.perf_counter()
            return result
        setattr(cls, name, timed)

    @property
    def elapsed(self) -> float:
        return self.shown_at - self.started


async def wait_for_next_item(app) -> None:
    while app.shown is None or app.saving:
        await asyncio.sleep(0.0005)


async def drive(engine) -> None:
    start = time.perf_counter()
    # a clock that moves one second each time it is read: every key comes after the screen's minimum time on an
    # item, so the figures are the screen's own work, not the dwell
    app = build_app(engine, rater_name="bench", language="en", clock=itertools.count(1000.0, 1.0).__next__)
    async with app.run_test(size=(100, 30)) as pilot:
        while app.shown is None:
            await asyncio.sleep(0.0005)
        startup = time.perf_counter() - start
        watch = Stopwatch(app)
        ticks, submits = [], []
        for n in range(ROUNDS):
            await pilot.press(str(n % 4 + 1))
            ticks.append(watch.elapsed)
            await pilot.press("space")
            await wait_for_next_item(app)
            submits.append(watch.elapsed)
        assert app.tally.items == ROUNDS
    print(f"start-up to first item: {startup:.2f} s (target < 1.5 s)")
    print(f"tick key to updated options: {summary(ticks)} (target median < 16 ms)")
    print(f"submit key to next item shown (save in a worker thread): {summary(submits)} (target median < 16 ms)")


def main() -> None:
    print(f"rater TUI benchmark, {datetime.now():%Y-%m-%d %H:%M}, {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}, {ITEMS:,} items, {ROUNDS} items rated through the pilot")
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_store_engine(f"sqlite:///{Path(tmp) / 'tui.db'}")
        build_synthetic(engine)
        asyncio.run(drive(engine))


if __name__ == "__main__":
    main()
