"""Store benchmark: SweQUAD-MC import time, the runner's own store calls, and `export pref` time at scale.

Builds a synthetic database of 100,000 items (4 distractors each) and 1,000,000 ratings by three raters, then
times what the runner (and so the rating screen) really calls: `open_run` (register, count, find the pending
items), `Pending.load` (the next 256 item views without rated distractors) and `save_judgements` (one item, in
its own transaction). Run: .venv/bin/python benchmarks/bench_store.py
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
from synthetic import ITEMS, build_synthetic

from rater.core.domain import Judgement
from rater.data.exports import preference_rows, write_pref
from rater.data.formats import parse_file
from rater.data.importing import ingest
from rater.raters.agenda import BATCH, Queue, open_run
from rater.raters.rules import RulesRater
from rater.store.engine import create_store_engine, session_scope
from rater.store.ratings import save_judgements

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


class Rater3(RulesRater):
    """The synthetic database's third rater (it rated the first half), under its own name."""

    kind, default_name = "llm", "rater3"


def percentiles(timings: list[float]) -> tuple[float, float]:
    timings = sorted(timings)
    return statistics.median(timings), timings[int(0.95 * len(timings)) - 1]


def bench_runner_calls(engine) -> dict[str, float]:
    """The runner's store calls for rater 3, which has 50,000 of 100,000 items left."""
    start = time.perf_counter()
    opened_run = open_run(engine, Rater3(), Queue())
    opened = time.perf_counter() - start
    run, pending = opened_run.start, opened_run.source
    loads, saves = [], []
    for offset in range(0, 40 * BATCH, BATCH):
        start = time.perf_counter()
        views = pending.load(offset)
        loads.append((time.perf_counter() - start) / len(views))
    for view in views[:200]:
        judgements = [Judgement(d.id, True) for d in view.distractors]
        start = time.perf_counter()
        with session_scope(engine) as session:
            save_judgements(session, rater_id=run.rater_id, item_id=view.id, judgements=judgements)
        saves.append(time.perf_counter() - start)
    return {"open": opened, "pending": run.pending, "load": percentiles(loads), "save": percentiles(saves)}


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
        calls = bench_runner_calls(engine)
        (load_median, load_p95), (save_median, save_p95) = calls["load"], calls["save"]
        print(f"runner start (open_run: register, count, {calls['pending']:,} pending items): {calls['open'] * 1000:.0f} ms")
        print(f"next item, per item of a {BATCH}-item batch (Pending.load): median {load_median * 1000:.3f} ms, "
              f"p95 {load_p95 * 1000:.3f} ms (target p95 < 20 ms)")
        print(f"save one item's 4 judgements (save_judgements, own transaction): median {save_median * 1000:.2f} ms, "
              f"p95 {save_p95 * 1000:.2f} ms")
        elapsed, count = bench_export(engine, folder)
        print(f"export pref (alpaca, 3 raters by majority): {count:,} pairs in {elapsed:.1f} s (target < 15 s)")


if __name__ == "__main__":
    main()
