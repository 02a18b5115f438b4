"""Rating-screen benchmark: drives the app through the pilot on a database of 100,000 items.

Prints the start-up time to the first item, and median / p95 of (a) a tick key press until the screen has
refreshed and (b) submit until the next item is shown. The pilot's own cost (posting a key and waiting until
the process is idle) is measured with an unbound key in the same run and subtracted for the net figures. Run: .venv/bin/python benchmarks/bench_tui.py
"""

import asyncio
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
    return f"median {statistics.median(values) * 1000:.1f} ms, p95 {values[int(0.95 * len(values)) - 1] * 1000:.1f} ms"


async def drive(engine) -> None:
    start = time.perf_counter()
    app = build_app(engine, rater_name="bench")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        startup = time.perf_counter() - start
        ticks, submits, idle = [], [], []
        for n in range(ROUNDS):
            t0 = time.perf_counter()
            await pilot.press("x")  # an unbound key: the pilot's own cost of a press and an idle wait
            await pilot.pause()
            idle.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await pilot.press(str(n % 4 + 1))
            await pilot.pause()
            ticks.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await pilot.press("space")
            await pilot.pause()
            submits.append(time.perf_counter() - t0)
        assert app.session.progress == ROUNDS
    print(f"start-up to first item: {startup:.2f} s (target < 1.5 s)")
    base = statistics.median(idle)
    print(f"pilot overhead (unbound key, same press + idle wait): {summary(idle)}")
    print(f"tick key to refreshed screen: {summary(ticks)}; net of the pilot overhead median "
          f"{(statistics.median(ticks) - base) * 1000:.1f} ms (target median < 16 ms)")
    print(f"submit to next item shown: {summary(submits)}; net of the pilot overhead median "
          f"{(statistics.median(submits) - base) * 1000:.1f} ms (target median < 16 ms)")


def main() -> None:
    print(f"rater TUI benchmark, {datetime.now():%Y-%m-%d %H:%M}, {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}, {ITEMS:,} items, {ROUNDS} items rated through the pilot")
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_store_engine(f"sqlite:///{Path(tmp) / 'tui.db'}")
        build_synthetic(engine)
        asyncio.run(drive(engine))


if __name__ == "__main__":
    main()
