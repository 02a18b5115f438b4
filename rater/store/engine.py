"""Opening the database: URL resolution, SQLite pragmas and the automatic upgrade to the newest schema."""

import asyncio
import functools
import os
import re
import sqlite3
import time
import weakref
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from sqlalchemy import Engine, create_engine, event, inspect, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InvalidatePoolError, NoSuchModuleError, SQLAlchemyError
from sqlmodel import Session

from rater.core.errors import StoreError

DEFAULT_DB = "rater.db"
BUSY_TIMEOUT_MS = 30_000
SUPPORTED = ("sqlite", "postgresql")
PING_AFTER = 5.0  # seconds a pooled connection may lie unused before it is checked when taken out again
T = TypeVar("T")
POSTGRES_DRIVER_HINT = "pip install 'rater[postgres]' (psycopg 3, the driver rater uses for PostgreSQL)"


def database_url(db: str | None = None) -> str:
    """`--db` value, else `RATER_DB`, else ./rater.db; a path becomes a SQLite URL, a URL is used as it is, except
    that a plain postgresql:// (or postgres://) URL gets the psycopg 3 driver, the one the postgres extra installs."""
    value = db or os.environ.get("RATER_DB") or DEFAULT_DB
    if "://" not in value:
        return f"sqlite:///{Path(value).expanduser().resolve()}"
    for plain in ("postgresql://", "postgres://"):
        if value.startswith(plain):
            return "postgresql+psycopg://" + value.removeprefix(plain)
    return value


def default_busy_timeout_ms() -> int:
    """How long SQLite waits for another program's lock: $RATER_BUSY_TIMEOUT_MS, else 30 s."""
    value = os.environ.get("RATER_BUSY_TIMEOUT_MS", "")
    return int(value) if value.isdigit() else BUSY_TIMEOUT_MS


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
        _journal_in_wal(cursor, busy_timeout_ms)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()
    return connect


def _journal_in_wal(cursor, busy_timeout_ms: int) -> None:
    """Switch a new file to WAL. Two processes opening one new file at once both try to: SQLite then answers one of
    them "locked" at once, without waiting (its deadlock guard), so that one tries again until the other is done."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def create_store_engine(url: str, *, upgrade: bool = True, busy_timeout_ms: int | None = None,
                        pool_size: int | None = None) -> Engine:
    """An engine for `url`, upgraded to the newest schema unless `upgrade` is False.

    `busy_timeout_ms` is how long SQLite waits for another process's lock before giving up (default:
    default_busy_timeout_ms()). `pool_size` connections are kept open (as many more may open under load; default
    SQLAlchemy's 5 and 10). Every failure to open is a StoreError that says what is wrong, never with the password.
    """
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        _check_sqlite_path(Path(url.removeprefix("sqlite:///")))
    engine = _engine(url, pool_size)
    timeout = default_busy_timeout_ms() if busy_timeout_ms is None else busy_timeout_ms
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(timeout))
    if upgrade:
        try:
            upgrade_to_head(engine)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise store_error(exc, url, timeout) from None
    return engine


def _engine(url: str, pool_size: int | None = None) -> Engine:
    try:
        scheme = make_url(url)
    except ArgumentError:
        raise StoreError(f"Cannot read the database URL {safe_url(url)}.",
                         "pass a file path, or a URL such as postgresql://user@host:5432/rater") from None
    if scheme.get_backend_name() not in SUPPORTED:
        raise StoreError(f"rater does not support {scheme.get_backend_name()} databases ({safe_url(url)}).",
                         "use a file path (SQLite) or postgresql://user@host:5432/database (PostgreSQL)")
    try:
        sizes = {"pool_size": pool_size, "max_overflow": pool_size} if pool_size else {}
        engine = create_engine(url, **sizes)
        _ping_idle_connections(engine)  # a connection the server dropped is replaced
        return engine
    except NoSuchModuleError:
        raise StoreError(f"The database driver {scheme.get_driver_name()!r} is not one rater supports.",
                         "use postgresql://... (rater picks psycopg 3) or a SQLite file path") from None
    except ImportError as exc:
        hint = f"install {exc.name}"
        if scheme.get_backend_name() == "postgresql":
            hint = POSTGRES_DRIVER_HINT if scheme.get_driver_name() == "psycopg" else (
                "use postgresql://... instead; rater opens it with psycopg 3 (pip install 'rater[postgres]')")
        raise StoreError(f"The driver for {safe_url(url)} is not installed (no module {exc.name!r}).",
                         hint) from None


def store_error(exc: BaseException, url: str, timeout_ms: int | None = None) -> StoreError:
    """A database failure as the user should see it: what is wrong and how to fix it, never the password."""
    return known_store_error(exc, url, timeout_ms) or StoreError(
        f"The database {safe_url(url)} failed: {database_text(exc, url)}", "check the --db path or URL")


def database_text(exc: BaseException, url: str) -> str:
    """The database's own words about a failure, the password masked."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    password = make_url(url).password
    return text.replace(password, "***") if password else text


def known_store_error(exc: BaseException, url: str, timeout_ms: int | None = None) -> StoreError | None:
    """A failure rater can explain in plain words (locked, full, read-only, unreachable, refused login, ...); None
    for any other."""
    parsed = make_url(url)
    lowered = database_text(exc, url).lower()
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if "file is not a database" in lowered or "malformed" in lowered:
            return _not_sqlite(path, "is not a SQLite database, or it is damaged")
        if "readonly" in lowered or "read-only" in lowered:
            return _read_only(path, "is read-only")
        if "disk is full" in lowered or "disk i/o" in lowered:
            return StoreError(f"The disk holding {path} is full (or failing): nothing more could be written.",
                              "free some space, then run the command again; everything saved before is kept")
        if "locked" in lowered or "busy" in lowered:
            seconds = (timeout_ms or default_busy_timeout_ms()) / 1000
            return StoreError(f"The database {path} stayed locked by another program for {seconds:g} s.",
                              "close the other program (or wait for it), then run the command again; "
                              "RATER_BUSY_TIMEOUT_MS sets how long rater waits")
        if "unable to open" in lowered:
            return StoreError(f"Cannot open the database {path}.", "check the --db path and its folder")
    else:
        server = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
        if "password authentication failed" in lowered or ("role" in lowered and "does not exist" in lowered):
            return StoreError(f"The PostgreSQL server at {server} refused user {parsed.username!r}: wrong password "
                              "or unknown user.", "check the user and password (in the URL, PGPASSWORD or "
                              "~/.pgpass); the database administrator creates roles")
        if "database" in lowered and "does not exist" in lowered:
            return StoreError(f"The PostgreSQL server at {server} has no database {parsed.database!r}.",
                              f"create it first: createdb -h {parsed.host or 'localhost'} -O "
                              f"{parsed.username or 'USER'} {parsed.database}")
        if any(s in lowered for s in ("connection refused", "could not translate", "timeout expired",
                                      "no route", "network is unreachable", "connection failed",
                                      "server closed the connection")):
            return StoreError(f"Cannot reach the PostgreSQL server at {server}.",
                              "check the host and port in --db / RATER_DB, and that the server is running and "
                              "accepts connections from this machine")
    return None


def _check_sqlite_path(path: Path) -> None:
    if not path.parent.is_dir():
        raise StoreError(f"Cannot open database {path}: the folder {path.parent} does not exist.",
                         "create the folder or pass another --db path")
    if path.is_dir():
        raise StoreError(f"Cannot use {path} as the database: it is a folder.", "pass a file path to --db")
    # No open() of the file here: closing any descriptor of a file drops every POSIX lock this process holds on it,
    # SQLite's included, and another process may then delete a WAL that this process still reads (SQLite's "How To
    # Corrupt" 2.2). A file that is not a database is refused by SQLite itself, before anything is written.
    if (path.exists() and not os.access(path, os.W_OK)) or not os.access(path.parent, os.W_OK):
        raise _read_only(path, "is read-only (no write permission, or a read-only disk)")


def _not_sqlite(path, what: str) -> StoreError:
    return StoreError(f"{path} {what}.", "pass the path of a rater database, or a new path to start one; the file "
                                         "was left as it is")


def _read_only(path, what: str) -> StoreError:
    return StoreError(f"The database {path} {what}: rater cannot save to it.",
                      "make the file and its folder writable, or copy it somewhere writable")


def _alembic_config(connection, scripts: str | None = None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", scripts or str(files("rater.migrations")))
    config.attributes["connection"] = connection
    return config


def _script(scripts: str | None = None):
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(None, scripts))


def head_revision(scripts: str | None = None) -> str:
    head = _script(scripts).get_current_head()
    if head is None:  # only a broken installation ships no migration scripts
        raise StoreError("rater's migration scripts are missing.", "reinstall rater (pip install --force-reinstall rater)")
    return head


def known_revisions(scripts: str | None = None) -> set[str]:
    return {rev.revision for rev in _script(scripts).walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine, revision: str = "head", *, scripts: str | None = None) -> None:
    """Bring the schema to `revision`; every command calls this when it opens a database.

    The upgrade is serialized and atomic: on SQLite it runs inside BEGIN IMMEDIATE with its DDL in the transaction,
    on PostgreSQL under an advisory lock; the revision is read again under the lock, so a process that waited for
    another's upgrade finds the schema current, and a migration that fails leaves the database as it was.
    `scripts` is another folder of migration scripts (by default rater's own)."""
    try:
        if revision == "head" and _current_checked(engine, scripts) == head_revision(scripts):
            return  # the common case, without taking the lock
        _migrate(engine, revision, scripts)
    except DBAPIError as exc:
        raise store_error(exc, engine.url.render_as_string(hide_password=False)) from None


def _current_checked(engine_or_connection, scripts: str | None) -> str | None:
    """The database's revision, refusing one written by a newer rater and tables rater did not create."""
    from alembic.runtime.migration import MigrationContext

    if isinstance(engine_or_connection, Engine):
        with engine_or_connection.connect() as connection:
            return _current_checked(connection, scripts)
    connection = engine_or_connection
    current = MigrationContext.configure(connection).get_current_revision()
    if current is not None and current not in known_revisions(scripts):
        raise StoreError(f"The database is at schema revision {current}, which this version of rater does not know: "
                         "it was written by a newer rater.", "upgrade rater (pip install -U rater) or use another --db")
    if current is None and set(inspect(connection).get_table_names()) - {"alembic_version"}:
        raise StoreError("The database holds tables that rater did not create.",
                         "pass a new --db path for rater's own database")
    return current


MIGRATION_LOCK = 0x7261746572  # PostgreSQL advisory lock key of schema upgrades ("rater")


def _migrate(engine: Engine, revision: str, scripts: str | None) -> None:
    """Run the upgrade in one transaction that holds the database's upgrade lock from its first statement."""
    from alembic import command

    sqlite = engine.dialect.name == "sqlite"
    migrating = _sqlite_migration_engine(engine) if sqlite else engine
    try:
        with migrating.begin() as connection:
            if not sqlite:
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            current = _current_checked(connection, scripts)  # again, under the lock: another process may have upgraded
            if revision == "head" and current == head_revision(scripts):
                return
            command.upgrade(_alembic_config(connection, scripts), revision)
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all() if sqlite else []
            if broken:
                raise StoreError(f"The upgrade would break {len(broken)} references between tables; nothing was "
                                 "changed.", "report this as a bug, with the output of `rater db stats`")
    finally:
        if migrating is not engine:
            migrating.dispose()


def _sqlite_migration_engine(engine: Engine) -> Engine:
    """An engine for one SQLite upgrade: SQLAlchemy's documented pysqlite recipe, so the driver issues no BEGIN or
    COMMIT of its own and DDL stays inside the transaction; it begins with BEGIN IMMEDIATE, which takes the write
    lock at once (waiting for another process's upgrade up to the busy timeout). Foreign keys are off while a
    batch migration rebuilds tables that others point at (the pragma only works outside a transaction); they are
    checked before the commit."""
    from sqlalchemy.pool import NullPool

    migrating = create_engine(engine.url, poolclass=NullPool)
    with engine.connect() as connection:  # the caller's busy timeout (set by its connect hook)
        timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar() or default_busy_timeout_ms()

    def connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(timeout)}")
        cursor.execute("PRAGMA foreign_keys = OFF")
        cursor.close()

    event.listen(migrating, "connect", connect)
    event.listen(migrating, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
    return migrating


def _ping_idle_connections(engine: Engine) -> None:
    """Check a pooled connection before use when it has lain unused for PING_AFTER seconds (the server may have
    restarted, or a firewall dropped it): a dead one is replaced, with every other connection as old, before the
    caller sees an error. SQLAlchemy's pool_pre_ping checks at every checkout, a round trip more for each of a
    busy server's many short transactions; a connection in steady use needs none."""

    @event.listens_for(engine, "checkin")
    def checked_in(_dbapi_connection, record) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection, record, _proxy) -> None:
        since = record.info.get("checked_in")
        if since is None or time.monotonic() - since < PING_AFTER:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise InvalidatePoolError(f"an idle connection was found closed ({type(error).__name__})") from None


def again_if_dropped(work: Callable[[], T]) -> T:
    """Run `work`, a whole transaction, and once more when its connection turned out to have been dropped by the
    server (a restart within PING_AFTER seconds of the connection's last use): SQLAlchemy has then replaced every
    pooled connection as old, so the second run gets a live one. A store write that was committed before the drop
    is not written twice (the ratings' unique keys, and a save's check of what it replaces, refuse it)."""
    try:
        return work()
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
        return work()


async def in_thread(work: Callable[..., T], *args: Any) -> T:
    """`work(*args)`, a whole transaction, in a worker thread, so the event loop goes on; once more if its
    connection had been dropped (`again_if_dropped`). Every store call of a run and of the rating page goes here."""
    return await asyncio.to_thread(again_if_dropped, functools.partial(work, *args))


def dialect_insert(session: Session, table) -> Any:
    """INSERT with the backend's ON CONFLICT support (SQLite and PostgreSQL spell it alike in SQLAlchemy)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    if name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    raise StoreError(f"rater does not support {name} databases.", "use SQLite (a file path) or PostgreSQL")


_BUILT: dict[tuple, Any] = {}


def built(key: tuple, build: Callable[[], T]) -> T:
    """The statement `build` returns, built once per `key` and kept, its values bound as parameters at each
    execution: SQLAlchemy then reuses its compiled form instead of building and compiling it at every call, which on
    a busy server's paths (each teacher's save and claim) costs more than the database's own work."""
    found = _BUILT.get(key)
    if found is None:
        found = _BUILT[key] = build()
    return found


_READERS: "weakref.WeakKeyDictionary[Engine, Engine]" = weakref.WeakKeyDictionary()


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """A session that only reads. On PostgreSQL each statement runs on its own (autocommit), so a few reads are not
    wrapped in BEGIN and COMMIT, two round trips more to a busy server; elsewhere a `session_scope`."""
    if engine.dialect.name != "postgresql":
        with session_scope(engine) as session:
            yield session
        return
    reader = _READERS.get(engine)
    if reader is None:
        reader = _READERS[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    with Session(reader, expire_on_commit=False) as session:
        yield session


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
