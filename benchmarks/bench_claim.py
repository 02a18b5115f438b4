"""A claim's cost as the study grows: one teacher's claim of the next item at 1,000 items (none finished) and at
100,000 items with 90 % finished, on SQLite and PostgreSQL, with the counter of teachers still needed per item
(`Item.need`, behind a partial index) and, in the same run, without it (every item's `need` "unknown", which makes
the claim count the ratings of each finished item it passes: the cost before the counter).

The finished items come first in the queue (the worst case for a claim that looks from the start) and the claim
looks from the start of the queue; overlap 1. Prints the median of 30 claims (each rolled back, so every claim
finds the same study) and the ratio to the 1,000-item claim.
Run: .venv/bin/python benchmarks/bench_claim.py [--items 100000] [--finished 0.9]
"""

import argparse
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sqlalchemy import insert, update  # noqa: E402
from sqlmodel import Session  # noqa: E402
from synthetic import header, on_each_backend  # noqa: E402

from rater.store.engine import create_store_engine, session_scope  # noqa: E402
from rater.store.study import Study  # noqa: E402
from rater.store.tables import NEED_UNKNOWN, Context, Distractor, Item, RaterRecord, Rating  # noqa: E402

PER_ITEM = 3
CHUNK = 20_000


def build(url: str, items: int, finished: int):
    """`items` items, the first `finished` rated by one teacher; K = 1 set afterwards (which counts every item)."""
    engine = create_store_engine(url)
    now = datetime.now(timezone.utc)
    with engine.begin() as c:
        c.execute(insert(RaterRecord), [{"id": n, "name": f"t{n}", "kind": "human", "created_at": now} for n in (1, 2)])
        for start in range(1, items + 1, CHUNK):
            ids = range(start, min(start + CHUNK, items + 1))
            c.execute(insert(Context), [{"id": i, "text": f"Kontext {i}.", "sha256": f"c{i}"} for i in ids])
            c.execute(insert(Item), [{"id": i, "context_id": i, "question": f"Fråga {i}?", "answer": f"svar {i}",
                                      "split": "train", "dataset": "bench", "record": str(i), "key": f"k{i}",
                                      "created_at": now} for i in ids])
            c.execute(insert(Distractor), [{"id": (i - 1) * PER_ITEM + p + 1, "item_id": i, "text": f"fel {i} {p}",
                                            "source": "human", "position": p, "key": f"d{i}.{p}"}
                                           for i in ids for p in range(PER_ITEM)])
            rows = [{"item_id": i, "distractor_id": (i - 1) * PER_ITEM + p + 1, "rater_id": 1, "accepted": True,
                     "created_at": now, "updated_at": now} for i in ids if i <= finished for p in range(PER_ITEM)]
            if rows:
                c.execute(insert(Rating), rows)
    with session_scope(engine) as session:
        Study().set_overlap(session, 1)
    if engine.dialect.name == "postgresql":
        with engine.begin() as c:
            c.exec_driver_sql("ANALYZE")
    return engine


def median_claim(engine, repeats: int = 30) -> float:
    samples = []
    for _ in range(repeats):
        with Session(engine) as session:
            began = time.perf_counter()
            item_id = Study().claim(session, rater_id=2)
            samples.append(time.perf_counter() - began)
            session.rollback()
        assert item_id is not None
    return statistics.median(samples)


def forget_counter(engine) -> None:
    with engine.begin() as c:
        c.execute(update(Item).values(need=NEED_UNKNOWN))
        if engine.dialect.name == "postgresql":
            c.exec_driver_sql("ANALYZE item")


def run(label: str, make_url, items: int, share: float) -> None:
    small = build(make_url("small"), 1000, 0)
    large = build(make_url("large"), items, int(items * share))
    base, grown = median_claim(small), median_claim(large)
    forget_counter(large)
    before = median_claim(large, repeats=5)
    small.dispose()
    large.dispose()
    print(f"{label}: claim at 1,000 items {base * 1000:.2f} ms; at {items:,} items with {share:.0%} finished "
          f"{grown * 1000:.2f} ms ({grown / base:.2f}x); without the counter {before * 1000:.1f} ms "
          f"({before / base:.0f}x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--finished", type=float, default=0.9)
    args = parser.parse_args()
    print(header("claim"))
    on_each_backend(lambda label, url_of: run(label, url_of, args.items, args.finished))


if __name__ == "__main__":
    main()
