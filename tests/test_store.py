"""The store under two writers, its indexes, and queries that must work at any size."""

import threading
import time
from datetime import datetime, timezone

from sqlalchemy import insert, select
from sqlmodel import Session

from rater.core.domain import Judgement
from rater.evaluation.evalsets import eval_set_progress
from rater.store.engine import create_store_engine, database_url
from rater.store.ratings import get_or_create_rater, item_ratings, save_judgements
from rater.store.tables import Context, Distractor, EvalSet, EvalSlot, Item, Rater, Rating, RatingHistory


def test_two_writers_under_one_name_at_once_keep_every_rating_and_its_history(cli, db_path):
    cli("demo")
    engines = [create_store_engine(database_url(str(db_path)), busy_timeout_ms=10_000) for _ in range(2)]
    with Session(engines[0]) as session:
        rater_id = get_or_create_rater(session, name="anna", kind="human").id
        ids = list(session.execute(select(Distractor.id).where(Distractor.item_id == 1)).scalars())
        session.commit()
    errors = []

    def save(engine, accepted: bool, hold: float) -> None:
        try:
            with Session(engine) as session:
                save_judgements(session, rater_id=rater_id, item_id=1, judgements=[Judgement(d, accepted) for d in ids])
                time.sleep(hold)  # the first writer keeps its transaction open while the second one saves
                session.commit()
        except Exception as error:  # noqa: BLE001 - collected and asserted on below
            errors.append(error)

    first = threading.Thread(target=save, args=(engines[0], True, 0.5))
    second = threading.Thread(target=save, args=(engines[1], False, 0.0))
    first.start()
    time.sleep(0.1)
    second.start()
    first.join()
    second.join()
    assert errors == []  # before: sqlite3.IntegrityError: UNIQUE constraint failed
    with Session(engines[0]) as check:
        ratings = check.execute(select(Rating.accepted, Rating.revision)).all()
        history = check.execute(select(RatingHistory.accepted, RatingHistory.revision)).all()
    assert sorted(ratings) == [(False, 2)] * 4  # the second save replaced the first
    assert sorted(history) == [(True, 1)] * 4  # and the first is kept as history


def test_one_items_ratings_are_found_through_an_index(cli, engine):
    cli("demo")
    cli("judge", "--rater", "rules")
    with engine.connect() as connection:
        plan = connection.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT distractor_id FROM rating WHERE item_id = 3").all()
    assert any("USING INDEX ix_rating_item" in row[-1] or "USING COVERING INDEX ix_rating_item" in row[-1]
               for row in plan), plan
    with Session(engine) as session:
        assert len(item_ratings(session, item_id=3)) == 4


def test_progress_of_an_evaluation_set_larger_than_sqlites_parameter_cap(engine):
    slots = 40_000  # more distractor ids than SQLite takes in one IN list (32,766)
    now = datetime.now(timezone.utc)
    with engine.begin() as c:
        c.execute(insert(Context), [{"id": 1, "text": "Text", "sha256": "c"}])
        c.execute(insert(Item), [{"id": i, "context_id": 1, "question": f"F {i}?", "answer": "s", "split": "test",
                                  "dataset": "d", "record": str(i), "key": f"k{i}"} for i in range(1, slots // 4 + 1)])
        c.execute(insert(Distractor), [{"id": d, "item_id": (d - 1) // 4 + 1, "text": f"fel {d}", "source": "sft",
                                        "position": (d - 1) % 4, "key": f"d{d}"} for d in range(1, slots + 1)])
        c.execute(insert(EvalSet), [{"id": 1, "name": "big", "params": "{}", "created_at": now}])
        c.execute(insert(EvalSlot), [{"eval_set_id": 1, "position": (d - 1) // 4, "slot": (d - 1) % 4,
                                      "item_id": (d - 1) // 4 + 1, "distractor_id": d} for d in range(1, slots + 1)])
        c.execute(insert(Rater), [{"id": 1, "name": "anna", "kind": "human", "settings": "{}"}])
        c.execute(insert(Rating), [{"distractor_id": d, "rater_id": 1, "item_id": (d - 1) // 4 + 1, "eval_set_id": 1,
                                    "accepted": True, "created_at": now, "updated_at": now, "revision": 1}
                                   for d in range(1, 4 * 100 + 1)])
    with Session(engine) as session:
        assert eval_set_progress(session) == [("big", slots // 4, [("anna", 100)])]


def test_opening_the_database_twice_in_one_process_keeps_sqlites_locks(cli, engine, db_path):
    """Opening a second engine used to read the file's header with open()/close(), which drops every POSIX lock the
    process holds on the file (SQLite's included): another process then took itself for the last one, deleted the
    WAL this process still read, and the next connection here saw "database disk image is malformed"."""
    import sqlite3
    import subprocess
    import sys

    from rater.data.demo import load_demo
    from rater.store.engine import create_store_engine, database_url, session_scope

    second = create_store_engine(database_url(str(db_path)))
    with session_scope(second) as session:
        load_demo(session)
    for round_ in range(3):
        subprocess.run([sys.executable, "-m", "rater.cli", "--db", str(db_path), "generate", "--source",
                        f"b{round_}", "--split", "all", "--num", "2"], check=True, capture_output=True)
        fresh = sqlite3.connect(db_path)
        assert fresh.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert fresh.execute("SELECT count(*) FROM distractor").fetchone()[0] > 48
        fresh.close()
    second.dispose()
