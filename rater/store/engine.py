"""Opening the database: URL resolution, SQLite pragmas and the automatic upgrade to the newest schema."""

import os
import re
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine, create_engine, event, inspect, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import Session

from rater.core.errors import StoreError

DEFAULT_DB = "rater.db"
BUSY_TIMEOUT_MS = 30_000


def database_url(db: str | None = None) -> str:
    """`--db` value, else `RATER_DB`, else ./rater.db; a path becomes a SQLite URL, a URL is used as it is."""
    value = db or os.environ.get("RATER_DB") or DEFAULT_DB
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def safe_url(url: str) -> str:
    """The database URL as it may be shown anywhere (output, logs, errors): the password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _sqlite_pragmas(busy_timeout_ms: int):
    def connect(dbapi_connection, _record) -> None:
        # WAL plus a busy timeout lets two rating processes share one file.
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()
    return connect


def create_store_engine(url: str, *, upgrade: bool = True, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """An engine for `url`, upgraded to the newest schema unless `upgrade` is False.

    `busy_timeout_ms` is how long SQLite waits for another process's lock before giving up.
    """
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        _check_sqlite_path(Path(url.removeprefix("sqlite:///")))
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(busy_timeout_ms))
    if upgrade:
        upgrade_to_head(engine)
    return engine


def _check_sqlite_path(path: Path) -> None:
    if not path.parent.is_dir():
        raise StoreError(f"Cannot open database {path}: the folder {path.parent} does not exist.",
                         "create the folder or pass another --db path")
    if path.is_dir():
        raise StoreError(f"Cannot use {path} as the database: it is a folder.", "pass a file path to --db")
    if (path.exists() and not os.access(path, os.W_OK)) or not os.access(path.parent, os.W_OK):
        raise StoreError(f"Cannot write the database {path}: permission denied.",
                         "pass a writable --db path or fix the file's permissions")


def _alembic_config(connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("rater.migrations")))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    config = _alembic_config(None)
    return ScriptDirectory.from_config(config).get_current_head()


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config(None))
    return {rev.revision for rev in script.walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`; every command calls this when it opens a database."""
    from alembic import command

    try:
        current = current_revision(engine)
        if current is not None and current not in known_revisions():
            raise StoreError(
                f"The database is at schema revision {current}, which this version of rater does not know: "
                "it was written by a newer rater.",
                "upgrade rater (pip install -U rater) or use another --db")
        if current is None and _has_foreign_tables(engine):
            raise StoreError("The database holds tables that rater did not create.",
                             "pass a new --db path for rater's own database")
        if revision == "head" and current == head_revision():
            return
        _migrate(engine, lambda connection: command.upgrade(_alembic_config(connection), revision))
    except OperationalError as exc:
        raise StoreError(f"Cannot open or upgrade the database: {exc.orig}",
                         "check the --db path and that no other program holds a lock on it") from exc


def _migrate(engine: Engine, step) -> None:
    """Run a migration step in one transaction. On SQLite, batch migrations rebuild tables that other tables point
    at, so foreign keys are off while it runs (the pragma only works outside a transaction) and checked after."""
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
            connection.commit()
        with connection.begin():
            step(connection)
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all() if sqlite else []
            if broken:
                raise StoreError(f"The upgrade would break {len(broken)} references between tables; nothing was "
                                 "changed.", "report this as a bug, with the output of `rater db stats`")
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys = ON")
            connection.commit()


def _has_foreign_tables(engine: Engine) -> bool:
    names = set(inspect(engine).get_table_names())
    return bool(names - {"alembic_version"})


def dialect_insert(session: Session, table):
    """INSERT with the backend's ON CONFLICT support (SQLite and PostgreSQL spell it alike in SQLAlchemy)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise StoreError(f"rater does not support {name} databases.", "use SQLite (a file path) or PostgreSQL")
    return insert(table)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session committed on success and rolled back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:  # including KeyboardInterrupt: nothing half-written stays
            session.rollback()
            raise
