"""A synthetic database for the benchmarks: 100,000 items with 4 distractors, 1,000,000 ratings by 3 raters."""

import os
import platform
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from sqlalchemy import insert

from rater.store.tables import Context, Distractor, Item, RaterRecord, Rating

ITEMS = 100_000


def header(name: str) -> str:
    """The first line of a benchmark's output: what ran, when and on which machine."""
    return (f"rater {name} benchmark, {datetime.now():%Y-%m-%d %H:%M}, {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")


def on_each_backend(run: Callable[[str, Callable[[str], str]], None]) -> None:
    """`run(label, url_of)` on SQLite (files in a temporary folder) and on a throwaway PostgreSQL server with its
    default durability (tests/pg_server.py); `url_of(name)` gives a new database's URL."""
    from rater.store.engine import database_url
    from tests.pg_server import find_bin_dir, start_server

    with tempfile.TemporaryDirectory() as tmp:
        run("SQLite", lambda name: database_url(str(Path(tmp) / f"{name}.db")))
    if find_bin_dir() is None:
        print("PostgreSQL: skipped, no server binaries on this machine")
        return
    server = start_server(durable=True)
    try:
        run("PostgreSQL 15" if "15" in str(server.bin_dir) else "PostgreSQL", server.create_database)
    finally:
        server.stop()


def build_synthetic(engine, ratings: bool = True) -> None:
    now = datetime.now(timezone.utc)
    with engine.begin() as c:
        c.execute(insert(Context), [{"id": i, "text": f"Kontext {i} " * 40, "sha256": f"c{i}"}
                                    for i in range(1, ITEMS // 4 + 1)])
        c.execute(insert(Item), [{"id": i, "context_id": (i - 1) // 4 + 1, "question": f"Fråga {i}?",
                                  "answer": f"svar {i}", "split": "train", "dataset": "synthetic",
                                  "record": str(i), "key": f"k{i}"} for i in range(1, ITEMS + 1)])
        c.execute(insert(Distractor), [{"id": d, "item_id": (d - 1) // 4 + 1, "text": f"fel {d}", "source": "sft",
                                        "position": (d - 1) % 4, "key": f"d{d}"} for d in range(1, 4 * ITEMS + 1)])
        if not ratings:
            return
        c.execute(insert(RaterRecord), [{"id": r, "name": f"rater{r}", "kind": "llm", "settings": "{}"} for r in (1, 2, 3)])
        # raters 1 and 2 rated everything (800,000), rater 3 the first half (200,000): 1,000,000 ratings
        for rater_id, last in ((1, 4 * ITEMS), (2, 4 * ITEMS), (3, 2 * ITEMS)):
            for start in range(1, last + 1, 100_000):
                c.execute(insert(Rating), [{"distractor_id": d, "rater_id": rater_id, "item_id": (d - 1) // 4 + 1,
                                            "accepted": (d * rater_id) % 3 != 0, "score": float((d * 7) % 5 + 1),
                                            "created_at": now, "updated_at": now, "revision": 1}
                                           for d in range(start, min(start + 100_000, last + 1))])


