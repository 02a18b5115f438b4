"""Migrations: blank database to head, no drift from the models, and an old database upgrades with its rows."""

import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from rater.core.errors import StoreError
from rater.store.engine import create_store_engine, current_revision, database_url, head_revision, upgrade_to_head


def test_blank_database_reaches_head_in_wal_mode(engine):
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() > 0


def test_models_and_migrations_do_not_drift(engine):
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []


def old_database(tmp_path, revision: str):
    """A database at an old `revision` holding a context, an item, a distractor and a rater."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_store_engine(url, upgrade=False)
    upgrade_to_head(old, revision)
    with old.begin() as c:
        c.execute(text("INSERT INTO context (id, text, sha256) VALUES (1, 'Text', 'h1')"))
        c.execute(text("INSERT INTO item (id, question, answer, split, dataset, record, context_id, key) "
                       "VALUES (1, 'Fråga?', 'svar', 'test', 'd', 'r0', 1, 'k1')"))
        c.execute(text("INSERT INTO distractor (id, text, source, position, item_id, key) VALUES (1, 'fel', 'human', 0, 1, 'dk')"))
        c.execute(text("INSERT INTO rater (id, name, kind, settings) VALUES (1, 'anna', 'human', '{}')"))
    return url, old


def test_first_revision_with_rows_upgrades_with_nothing_lost(tmp_path):
    url, old = old_database(tmp_path, "0001")
    with old.begin() as c:
        c.execute(text("INSERT INTO rating (id, accepted, distractor_id, rater_id, item_id, created_at, updated_at, reason) "
                       "VALUES (1, 0, 1, 1, 1, '2026-01-01 10:00:00', '2026-01-01 10:00:00', 'unreasonable')"))
    old.dispose()
    engine = create_store_engine(url)
    assert current_revision(engine) == head_revision()
    with engine.connect() as c:
        row = c.execute(text("SELECT accepted, reason, revision, rater_id FROM rating")).one()
        assert tuple(row) == (0, "unreasonable", 1, 1)
        assert c.execute(text("SELECT question FROM item")).scalar() == "Fråga?"
        assert c.execute(text("SELECT count(*) FROM rating_history")).scalar() == 0


def test_database_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "new.db"
    create_store_engine(f"sqlite:///{path}").dispose()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="newer rater"):
        create_store_engine(f"sqlite:///{path}")


def test_sqlite_only_sql_stays_in_migrations():
    # The store runs on PostgreSQL too: no PRAGMA or sqlite_* calls outside store/engine.py's dialect hook
    # (the `sqlite_where=` index keyword, declared beside `postgresql_where=`, is dialect-neutral).
    import re
    from pathlib import Path
    package = Path(__file__).resolve().parents[1] / "rater"
    sqlite_only = re.compile(r"PRAGMA|sqlite_(?!where)")
    offenders = [p.name for p in package.rglob("*.py") if p.name != "engine.py" and sqlite_only.search(p.read_text())]
    assert offenders == []


def test_ratings_of_revision_0003_upgrade_into_the_preference_scope(tmp_path):
    url, old = old_database(tmp_path, "0003")
    with old.begin() as c:
        c.execute(text("INSERT INTO rating (id, accepted, distractor_id, rater_id, item_id, created_at, updated_at, "
                       "reason, revision) VALUES (1, 1, 1, 1, 1, '2026-01-01 10:00:00', '2026-01-01 10:00:00', NULL, 2)"))
        c.execute(text("INSERT INTO rating_history (id, rating_id, revision, rated_at, replaced_at, accepted) "
                       "VALUES (1, 1, 1, '2026-01-01 09:00:00', '2026-01-01 10:00:00', 0)"))
    old.dispose()
    engine = create_store_engine(url)
    with engine.connect() as c:
        assert tuple(c.execute(text("SELECT accepted, revision, eval_set_id FROM rating")).one()) == (1, 2, None)
        assert c.execute(text("SELECT count(*) FROM rating_history")).scalar() == 1
    with pytest.raises(IntegrityError):  # still one preference rating per distractor and rater
        with engine.begin() as c:
            c.execute(text("INSERT INTO rating (accepted, distractor_id, rater_id, item_id, created_at, updated_at, "
                           "revision) VALUES (0, 1, 1, 1, '2026-01-02', '2026-01-02', 1)"))


RACE = """
import sys, time
from rater.core.errors import RaterError
from rater.store.engine import create_store_engine, database_url
start = float(sys.argv[2])
while time.time() < start:  # both processes have imported everything; now they open the new database at once
    pass
try:
    create_store_engine(database_url(sys.argv[1])).dispose()
except RaterError as error:
    print(error.message)
    sys.exit(2)
"""


def _open_at_once(url: str) -> list[tuple[int, str]]:
    import subprocess
    import sys
    import time

    start = str(time.time() + 1.5)
    runs = [subprocess.Popen([sys.executable, "-c", RACE, url, start], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True) for _ in range(2)]
    return [(run.wait(timeout=60), run.stdout.read()) for run in runs]


def test_two_processes_upgrading_one_new_sqlite_file_at_once_both_succeed(tmp_path):
    for round_ in range(10):
        path = tmp_path / f"race{round_}.db"
        outcomes = _open_at_once(str(path))
        assert outcomes == [(0, ""), (0, "")], f"round {round_}: {outcomes}"
        engine = create_store_engine(f"sqlite:///{path}")
        assert current_revision(engine) == head_revision()
        engine.dispose()


def test_two_processes_upgrading_one_empty_postgresql_database_at_once_both_succeed(pg_server):
    for round_ in range(10):
        url = pg_server.create_database(f"race_{round_}")
        outcomes = _open_at_once(url)
        assert outcomes == [(0, ""), (0, "")], f"round {round_}: {outcomes}"


FAILING_STEP = '''"""A step that creates a table, then fails."""

import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.add_column("item", sa.Column("extra", sa.Integer))
    raise RuntimeError("the step fails halfway")


def downgrade() -> None:
    pass
'''


def _scripts_with_failing_step(tmp_path):
    """rater's migration scripts plus one more, which creates a table and changes another, then raises."""
    import shutil
    from importlib.resources import files

    folder = tmp_path / "scripts"
    shutil.copytree(str(files("rater.migrations")), folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / "9001_fails.py").write_text(FAILING_STEP.replace("{head}", head_revision()))
    return str(folder)


def _schema(engine) -> dict[str, list[str]]:
    from sqlalchemy import inspect

    inspector = inspect(engine)
    return {table: sorted(c["name"] for c in inspector.get_columns(table)) for table in inspector.get_table_names()}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_migration_that_fails_halfway_leaves_the_database_as_it_was(backend, tmp_path, request):
    url = (database_url(str(tmp_path / "half.db")) if backend == "sqlite" else
           request.getfixturevalue("pg_server").create_database(f"half_{tmp_path.name[-8:].lower()}"))
    engine = create_store_engine(url)
    before = _schema(engine)
    scripts = _scripts_with_failing_step(tmp_path)
    with pytest.raises(RuntimeError, match="fails halfway"):
        upgrade_to_head(engine, scripts=scripts)
    assert _schema(engine) == before  # no half_done table, no item.extra column
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_a_first_upgrade_that_fails_leaves_a_new_database_empty(tmp_path):
    url = database_url(str(tmp_path / "new.db"))
    engine = create_store_engine(url, upgrade=False)
    with pytest.raises(RuntimeError, match="fails halfway"):
        upgrade_to_head(engine, scripts=_scripts_with_failing_step(tmp_path))
    assert _schema(engine) == {}
    engine.dispose()


def test_items_of_revision_0012_keep_their_split_as_the_one_they_came_with(tmp_path):
    """Migration 0013 gives items already in the split they have as the one they came with, so `rater split`
    can give it back after excluding them for their length."""
    url, old = old_database(tmp_path, "0012")  # one item, split "test"
    old.dispose()
    engine = create_store_engine(url)
    with engine.connect() as c:
        assert tuple(c.execute(text("SELECT split, file_split FROM item")).one()) == ("test", "test")
    engine.dispose()
