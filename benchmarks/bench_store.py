"""Store benchmark: SweQUAD-MC import time, next-unrated-item latency and `export pref` time at scale.

Builds a synthetic database of 100,000 items (4 distractors each) and 1,000,000 ratings by three raters,
then prints the figures. Run: .venv/bin/python benchmarks/bench_store.py
"""

import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from sqlmodel import Session

from rater.store.engine import create_store_engine, session_scope
from rater.data.exports import preference_rows, write_pref
from rater.data.formats import parse_file
from rater.data.importing import ingest
from rater.store.items import ItemFilter, next_unrated_item
from synthetic import ITEMS, build_synthetic

SHARED = Path(os.environ.get("RATER_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def bench_import(folder: Path) -> float:
    engine = create_store_engine(f"sqlite:///{folder / 'import.db'}")
    start = time.perf_counter()
    batches = [parse_file(SHARED / "swequad-mc" / f"{name}.json") for name in ("training", "dev", "test")]
    with session_scope(engine) as session:
        counts = ingest(session, batches=batches)
    elapsed = time.perf_counter() - start
    assert counts.records == 1190
    return elapsed


def bench_next_unrated(engine) -> tuple[float, float, float]:
    timings = []
    with Session(engine) as session:
        start = time.perf_counter()
        current = next_unrated_item(session, rater_id=3, where=ItemFilter())
        cold = time.perf_counter() - start
        for _ in range(500):  # as the rating screen does: the next item after the one just shown
            start = time.perf_counter()
            current = next_unrated_item(session, rater_id=3, where=ItemFilter(), after_id=current)
            timings.append(time.perf_counter() - start)
    timings.sort()
    return cold, statistics.median(timings), timings[int(0.95 * len(timings)) - 1]


def bench_export(engine, folder: Path) -> tuple[float, int]:
    start = time.perf_counter()
    with Session(engine) as session:
        count = write_pref(preference_rows(session, raters=[1, 2, 3]), folder / "pref.json", "alpaca")
    return time.perf_counter() - start, count


def main() -> None:
    print(f"rater store benchmark, {datetime.now():%Y-%m-%d %H:%M}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"import SweQUAD-MC (1,190 records): {bench_import(folder):.2f} s (target < 3 s)")
        engine = create_store_engine(f"sqlite:///{folder / 'big.db'}")
        start = time.perf_counter()
        build_synthetic(engine)
        print(f"built {ITEMS:,} items, {4 * ITEMS:,} distractors, 1,000,000 ratings in {time.perf_counter() - start:.1f} s")
        cold, median, p95 = bench_next_unrated(engine)
        print(f"next unrated item: first call {cold * 1000:.1f} ms (skips 50,000 rated items); "
              f"then median {median * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms (target p95 < 20 ms)")
        elapsed, count = bench_export(engine, folder)
        print(f"export pref (alpaca, 3 raters by majority): {count:,} pairs in {elapsed:.1f} s (target < 15 s)")


if __name__ == "__main__":
    main()
