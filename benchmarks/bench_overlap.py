"""Work shared out: 20 simulated teachers in 20 processes rate 2,000 items with overlap 2, on PostgreSQL and on
SQLite, through the screen's own path (the one runner driving the teacher rater, HumanRater, whose presenter
answers at once instead of drawing the screen).

Prints per backend: items with exactly 2 teachers' ratings (must be all), ratings lost and duplicated (must be 0),
p50 and p95 of "submit, then the next item is shown", and the time to the first item. Then one claim alone with
half the study finished: searched from the start of the queue, and behind the teacher's last item (as the runner
does).
Run: .venv/bin/python benchmarks/bench_overlap.py [--teachers 20] [--items 2000]
PostgreSQL runs on a throwaway server started from the machine's server binaries (tests/pg_server.py), with
PostgreSQL's default durability settings.
"""

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402
from sqlmodel import Session  # noqa: E402

from rater.core.domain import Judgement  # noqa: E402
from rater.raters.human import HumanRater  # noqa: E402
from rater.raters.runner import Queue, run_rater  # noqa: E402
from rater.store.engine import create_store_engine, database_url, session_scope  # noqa: E402
from rater.store.study import Study  # noqa: E402
from rater.store.tables import Context, Distractor, Item, RaterRecord, Rating  # noqa: E402

OVERLAP = 2
PER_ITEM = 3


class Teacher:
    """A presenter that submits every item at once (the first distractor accepted) and times the screen's path."""

    def __init__(self, rater: HumanRater) -> None:
        self.rater = rater
        rater.presenter = self
        self.started = time.perf_counter()
        self.first: float | None = None
        self.submitted_at: float | None = None
        self.waits: list[float] = []
        self.submitted: list[list[int]] = []  # distractor ids of every submitted item

    def present(self, item) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now - self.started
        elif self.submitted_at is not None:
            self.waits.append(now - self.submitted_at)
        judgements = [Judgement(d.id, n == 0) for n, d in enumerate(item.distractors)]
        self.submitted.append([d.id for d in item.distractors])
        self.submitted_at = time.perf_counter()
        asyncio.get_running_loop().call_soon(self.rater.decide, judgements)

    def exhausted(self) -> None:
        asyncio.get_running_loop().call_soon(self.rater.stop)

    def save_failed(self, item, error) -> None:
        raise SystemExit(f"save failed: {error}")


def worker(url: str, name: str, start_at: float) -> None:
    engine = create_store_engine(url, upgrade=False)
    while time.time() < start_at:  # every teacher starts in the same moment
        time.sleep(0.001)
    teacher = Teacher(HumanRater(name))
    asyncio.run(run_rater(teacher.rater, engine, Queue()))  # the study's K (set below)
    print(json.dumps({"first": teacher.first, "waits": teacher.waits, "submitted": teacher.submitted}))


def build(url: str, items: int) -> None:
    engine = create_store_engine(url)
    now = datetime.now(timezone.utc)
    with engine.begin() as c:
        c.execute(insert(Context), [{"id": i, "text": f"Kontext {i}.", "sha256": f"c{i}"} for i in range(1, items + 1)])
        c.execute(insert(Item), [{"id": i, "context_id": i, "question": f"Fråga {i}?", "answer": f"svar {i}",
                                  "split": "train", "dataset": "bench", "record": str(i), "key": f"k{i}",
                                  "created_at": now} for i in range(1, items + 1)])
        c.execute(insert(Distractor), [{"id": d, "item_id": (d - 1) // PER_ITEM + 1, "text": f"fel {d}",
                                        "source": "human", "position": (d - 1) % PER_ITEM, "key": f"d{d}"}
                                       for d in range(1, PER_ITEM * items + 1)])
    if engine.dialect.name == "postgresql":  # explicit ids: move the sequences past them
        with engine.begin() as c:
            for table in ("context", "item", "distractor"):
                c.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT max(id) FROM {table}))")
    with session_scope(engine) as session:
        Study().set_overlap(session, OVERLAP)
    engine.dispose()


def run_backend(label: str, url: str, teachers: int, items: int) -> dict:
    build(url, items)
    start_at = time.time() + 3.0  # time for every process to import and connect
    processes = [subprocess.Popen([sys.executable, __file__, "--worker", url, f"teacher{n:02d}", str(start_at)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for n in range(teachers)]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=3600)
        if process.returncode != 0:
            raise SystemExit(f"{label}: a teacher failed:\n{err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    elapsed = time.time() - start_at
    engine = create_store_engine(url, upgrade=False)
    with engine.connect() as c:
        per_item = Counter(dict(c.execute(select(Rating.item_id, func.count(func.distinct(Rating.rater_id)))
                                          .group_by(Rating.item_id)).all()))
        stored = Counter(c.execute(select(RaterRecord.name, Rating.distractor_id).join(RaterRecord)).all())
    engine.dispose()
    submitted = Counter((f"teacher{n:02d}", d) for n, r in enumerate(results) for ids in r["submitted"] for d in ids)
    waits = sorted(w for r in results for w in r["waits"])
    firsts = sorted(r["first"] for r in results)
    return {
        "label": label, "elapsed": elapsed, "exactly": sum(1 for n in per_item.values() if n == OVERLAP),
        "more": sum(1 for n in per_item.values() if n > OVERLAP), "items": items,
        "lost": sum(1 for key in submitted if key not in stored),
        "duplicated": sum(n - 1 for n in stored.values()) + sum(n - 1 for n in submitted.values()),
        "ratings": sum(stored.values()), "p50": statistics.median(waits), "p95": waits[int(0.95 * len(waits)) - 1],
        "first_p50": statistics.median(firsts), "first_max": firsts[-1],
        "per_teacher": sorted(len(r["submitted"]) for r in results),
    }


def claim_alone(label: str, url: str, items: int, repeats: int = 30) -> None:
    """Median time of one claim by a third teacher with the first half of the items rated by two teachers."""
    build(url, items)
    engine = create_store_engine(url, upgrade=False)
    now = datetime.now(timezone.utc)
    half = items // 2
    with engine.begin() as c:
        c.execute(insert(RaterRecord), [{"id": n, "name": f"t{n}", "kind": "human", "created_at": now} for n in (1, 2, 3)])
        c.execute(insert(Rating), [{"item_id": (d - 1) // PER_ITEM + 1, "distractor_id": d, "rater_id": r,
                                    "accepted": True, "created_at": now, "updated_at": now}
                                   for r in (1, 2) for d in range(1, PER_ITEM * half + 1)])
        if engine.dialect.name == "postgresql":
            c.exec_driver_sql("ANALYZE")
    times = {}
    for name, after in (("from the start", None), ("behind the last item", half)):
        samples = []
        for _ in range(repeats):
            with Session(engine) as session:  # rolled back: every claim finds the same study
                began = time.perf_counter()
                Study().claim(session, rater_id=3, after=after)  # K (OVERLAP) as build() stored it
                samples.append(time.perf_counter() - began)
                session.rollback()
        times[name] = statistics.median(samples)
    engine.dispose()
    start, behind = times["from the start"], times["behind the last item"]
    print(f"{label}: one claim alone, {half:,} of {items:,} items finished: from the start {start * 1000:.1f} ms, "
          f"behind the last item {behind * 1000:.1f} ms ({start / behind:.1f}x)")


def report(r: dict, teachers: int) -> None:
    print(f"{r['label']}: {teachers} teachers, {r['items']:,} items, overlap {OVERLAP}, all done in {r['elapsed']:.1f} s")
    print(f"  items with exactly {OVERLAP} teachers' ratings: {r['exactly']:,} of {r['items']:,}"
          f" (more than {OVERLAP}: {r['more']})")
    print(f"  ratings stored {r['ratings']:,}; lost {r['lost']}, duplicated {r['duplicated']}")
    print(f"  submit -> next item shown: p50 {r['p50'] * 1000:.1f} ms, p95 {r['p95'] * 1000:.1f} ms")
    print(f"  time to the first item: median {r['first_p50'] * 1000:.0f} ms, slowest {r['first_max'] * 1000:.0f} ms")
    print(f"  items per teacher: {r['per_teacher'][0]} to {r['per_teacher'][-1]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teachers", type=int, default=20)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--worker", nargs=3)
    args = parser.parse_args()
    if args.worker:
        url, name, start_at = args.worker
        worker(url, name, float(start_at))
        return
    print(f"rater overlap benchmark, {datetime.now():%Y-%m-%d %H:%M}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")
    from tests.pg_server import find_bin_dir, start_server

    with tempfile.TemporaryDirectory() as tmp:
        report(run_backend("SQLite", database_url(str(Path(tmp) / "bench.db")), args.teachers, args.items),
               args.teachers)
        claim_alone("SQLite", database_url(str(Path(tmp) / "alone.db")), args.items)
    if find_bin_dir() is None:
        print("PostgreSQL: skipped, no server binaries on this machine")
        return
    server = start_server(durable=True)  # PostgreSQL's default settings (fsync on)
    label = "PostgreSQL 15" if "15" in str(server.bin_dir) else "PostgreSQL"
    try:
        report(run_backend(label, server.create_database("bench"), args.teachers, args.items), args.teachers)
        claim_alone(label, server.create_database("alone"), args.items)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
