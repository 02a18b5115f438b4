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
from rater.store.tables import Context, Distractor, EvalSet, EvalSlot, Item, RaterRecord, Rating, RatingHistory


def test_two_writers_under_one_name_at_once_keep_every_rating_and_its_history(cli, db_path):
    cli("demo")
    engines = [create_store_engine(database_url(str(db_path)), busy_timeout_ms=10_000) for _ in range(2)]
    with Session(engines[0]) as session:
        rater_id = get_or_create_rater(session, name="anna", kind="human").id
        ids = list(session.execute(select(Distractor.id).where(Distractor.item_id == 1)).scalars())
        session.commit()
    errors = []
    first_saved, second_saving = threading.Event(), threading.Event()

    def first_writer() -> None:
        try:
            with Session(engines[0]) as session:
                save_judgements(session, rater_id=rater_id, item_id=1, judgements=[Judgement(d, True) for d in ids])
                first_saved.set()
                second_saving.wait(10)  # the first writer keeps its transaction open while the second one saves
                time.sleep(0.2)  # (and reaches the database's lock)
                session.commit()
        except Exception as error:  # noqa: BLE001 - collected and asserted on below
            errors.append(error)

    def second_writer() -> None:
        try:
            first_saved.wait(10)
            second_saving.set()
            with Session(engines[1]) as session:
                save_judgements(session, rater_id=rater_id, item_id=1, judgements=[Judgement(d, False) for d in ids])
                session.commit()
        except Exception as error:  # noqa: BLE001 - collected and asserted on below
            errors.append(error)

    first = threading.Thread(target=first_writer)
    second = threading.Thread(target=second_writer)
    first.start()
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
        c.execute(insert(RaterRecord), [{"id": 1, "name": "anna", "kind": "human", "settings": "{}"}])
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


async def test_a_failing_piece_of_a_writer_batch_fails_alone(engine, cli):
    """The writer commits whatever has arrived in one transaction; when one piece fails, each piece is tried again
    on its own, so only that piece fails and the others are stored."""
    import asyncio

    from sqlalchemy.exc import IntegrityError

    from rater.store.writer import Row, StoreWriter
    cli("demo")
    writer = StoreWriter(engine)
    release = threading.Event()
    blocker = writer.submit(lambda session: release.wait(10))  # holds the thread while the batch queues up
    good = writer.submit(Row(EvalSet.__table__, {"name": "good", "params": "{}", "created_at": datetime.now(timezone.utc)}))
    bad = writer.submit(Row(EvalSlot.__table__, {"eval_set_id": 999, "position": 0, "slot": 0, "item_id": 999,
                                                 "distractor_id": 999}))  # no such set: a foreign key fails
    also_good = writer.submit(Row(EvalSet.__table__, {"name": "also good", "params": "{}",
                                                      "created_at": datetime.now(timezone.utc)}))
    release.set()
    await blocker
    results = await asyncio.gather(good, bad, also_good, return_exceptions=True)
    await writer.close()
    assert results[0] is None and results[2] is None and isinstance(results[1], IntegrityError)
    with Session(engine) as session:
        assert sorted(session.execute(select(EvalSet.name)).scalars()) == ["also good", "good"]
