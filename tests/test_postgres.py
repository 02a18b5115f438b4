"""PostgreSQL: a real server that the test session starts itself (tests/pg_server.py), reached by the same --db
URL. The pipeline's outputs are compared byte for byte with the same pipeline on SQLite."""

import json
import sys
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select
from sqlmodel import Session, SQLModel

from rater.store.engine import create_store_engine, current_revision, database_url, head_revision
from rater.store.tables import JudgeRequest, RaterRecord, Rating
from tests.conftest import Cli, build_app, press, run_driver, shared_file
from tests.fake_openai import FakeOpenAI


def test_a_blank_database_reaches_head_without_drift(pg_url):
    engine = create_store_engine(pg_url)
    assert engine.dialect.name == "postgresql" and current_revision(engine) == head_revision()
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []


def pipeline(cli: Cli, out: Path, swequad_files: list[Path]) -> dict[str, bytes]:
    """Import, split, generate, judge by rules, export everything and report; every output file's bytes."""
    out.mkdir()
    cli("import", *swequad_files)
    cli("import", shared_file("published-thesis-samples/pref_sample.json"))
    cli("split", "--seed", "1")
    cli("generate", "--generator", "baseline", "--source", "baseline", "--num", "2")
    cli("judge", "--rater", "rules")
    cli("export", "sft", "-o", out / "sft.json")
    cli("export", "pref", "--pairs", "all", "--format", "trl", "-o", out / "pref.jsonl")
    cli("export", "kto", "-o", out / "kto.jsonl")
    (out / "report.md").write_text(cli("report", "--format", "markdown").output)
    return {path.name: path.read_bytes() for path in sorted(out.iterdir())}


def test_import_exports_runner_and_report_match_sqlite_byte_for_byte(pg_url, tmp_path, swequad_files):
    on_postgres = pipeline(Cli(pg_url), tmp_path / "pg", swequad_files)
    on_sqlite = pipeline(Cli(database_url(str(tmp_path / "rater.db"))), tmp_path / "sqlite", swequad_files)
    assert sorted(on_postgres) == ["kto.jsonl", "pref.jsonl", "report.md", "sft.json"]
    assert len(json.loads(on_postgres["sft.json"])) > 800  # SweQUAD-MC's train file (962 items, long texts out)
    for name in on_postgres:
        assert on_postgres[name] == on_sqlite[name], name


def test_the_judge_runs_against_the_loopback_server(pg_url, tmp_path, monkeypatch):
    cli = Cli(pg_url)
    cli("demo")
    monkeypatch.setenv("JUDGE_KEY", "test-key")
    server = FakeOpenAI().start()
    try:
        cli("judge", "--model", "judge-model", "--base-url", server.url, "--api-key-env", "JUDGE_KEY",
            "--retry-base", "0.01", "--timeout", "5", "--concurrency", "8")
    finally:
        server.stop()
    engine = create_store_engine(pg_url)
    with Session(engine) as session:
        judged = session.execute(select(func.count()).select_from(Rating).join(RaterRecord).where(RaterRecord.kind == "llm")).scalar()
        total = session.execute(select(func.count()).select_from(JudgeRequest)).scalar()
    assert judged == 48 and total >= 12  # 12 demo items of 4 distractors, each item asked at least once
    assert cli("judge", "--model", "judge-model", "--base-url", "http://127.0.0.1:9/v1",
               "--api-key-env", "JUDGE_KEY").exit_code == 0  # nothing left: the rerun sends nothing


async def test_the_rating_screen_saves_on_postgres(pg_url):
    cli = Cli(pg_url)
    cli("demo")
    engine = create_store_engine(pg_url)
    app = build_app(engine, rater_name="anna")
    async with app.run_test(size=(100, 30)) as pilot:
        await press(pilot, "1", "3", "space", "backspace")
        await press(pilot, "2", "space")
    with Session(engine) as session:
        rows = session.execute(select(Rating.accepted, Rating.revision).join(RaterRecord).where(RaterRecord.name == "anna")
                               .order_by(Rating.shown_position)).all()
    # resubmitted after going back: only the changed judgement got a new revision
    assert [tuple(r) for r in rows] == [(True, 1), (True, 2), (True, 1), (False, 1)]


def test_the_uncertain_order_and_its_calibration_committee_on_postgres(pg_url):
    from tests.test_uncertain import check_unsettled_first

    Cli(pg_url)("demo")
    check_unsettled_first(create_store_engine(pg_url))


def test_two_screens_save_at_once(pg_url):
    Cli(pg_url)("demo")
    keys = ["1,3,space"] * 12
    screens = [run_driver(pg_url, name, *keys) for name in ("anna", "bo")]
    for screen in screens:
        _, err = screen.communicate(timeout=180)
        assert screen.returncode == 0, err
    engine = create_store_engine(pg_url)
    with Session(engine) as session:
        per_rater = dict(session.execute(select(RaterRecord.name, func.count(Rating.id)).join(Rating)
                                         .group_by(RaterRecord.name)).all())
    assert per_rater == {"anna": 48, "bo": 48}


# bad input: a clear error, exit code 2, nothing written, never the password -----------------------------------

def refused(url: str, *args: str):
    result = Cli(url)(*(args or ("db", "stats")), ok=False)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output + result.stderr
    return " ".join(result.stderr.split())


def test_an_unreachable_server_names_host_and_port_and_hides_the_password(pg_server):
    from tests.pg_server import _free_port

    port = _free_port()
    message = refused(f"postgresql://rater_admin:s3cret-pw@127.0.0.1:{port}/rater")
    assert f"Cannot reach the PostgreSQL server at 127.0.0.1:{port}" in message and "s3cret-pw" not in message


def test_a_wrong_password_and_an_unknown_database_are_named(pg_server):
    message = refused(pg_server.url("postgres", password="wrong-pw"))
    assert "refused user 'rater_admin'" in message and "wrong-pw" not in message
    message = refused(pg_server.url("no_such_db"))
    assert "has no database 'no_such_db'" in message and "createdb" in message
    assert pg_server.password not in message


def test_a_missing_driver_names_the_extra_to_install(tmp_path):
    """The CLI in a fresh interpreter where psycopg cannot be imported, as after `pip install rater`."""
    import subprocess

    code = ("import sys; sys.modules['psycopg'] = None; sys.modules['psycopg2'] = None\n"
            "from rater.cli import main; sys.argv = ['rater', '--db', 'postgresql://u:pw@127.0.0.1/x', 'db', "
            "'stats']; main()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "pip install 'rater[postgres]'" in " ".join(result.stderr.split())
    assert list(tmp_path.iterdir()) == []


def test_the_readmes_setup_for_a_school_works_as_written(pg_server, tmp_path):
    """The README's steps, run as written: createuser and createdb (the server's own client programs) make a role
    that is no superuser and owns the study's database; a teacher's machine sets a plain postgresql:// URL in
    RATER_DB and the password in PGPASSWORD, and the first command creates the tables."""
    import os
    import secrets
    import subprocess

    role, database = f"teacher_{secrets.token_hex(3)}", f"study_{secrets.token_hex(3)}"
    password = "pw-" + secrets.token_hex(8)
    admin = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(pg_server.port), "PGUSER": "rater_admin",
             "PGPASSWORD": pg_server.password, "PGDATABASE": "postgres"}
    for command, stdin in ((["createuser", "--pwprompt", role], f"{password}\n{password}\n"),
                           (["createdb", "--owner", role, database], "")):
        made = subprocess.run([str(pg_server.bin_dir / command[0]), *command[1:]], input=stdin, env=admin,
                              capture_output=True, text=True, start_new_session=True)  # no terminal: prompts read stdin
        assert made.returncode == 0, made.stderr
    teacher = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    teacher |= {"RATER_DB": f"postgresql://{role}@127.0.0.1:{pg_server.port}/{database}", "PGPASSWORD": password,
                "RATER_HOME": str(tmp_path / "home")}

    def rater(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "rater.cli", *args], env=teacher, capture_output=True,
                                text=True, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert password not in result.stdout + result.stderr
        return " ".join(result.stdout.split())

    assert f"Database: postgresql+psycopg://{role}@127.0.0.1" in rater("db", "stats")  # psycopg 3 picked for the URL
    rater("demo")
    rater("judge", "--rater", "rules")
    assert "│ demo │ test │ 12 │" in rater("db", "stats") and "│ rules │ rule │ 48 │" in rater("db", "stats")


def end_every_backend(pg_url: str) -> None:
    """What a restart of the server does to the pool's connections."""
    import psycopg
    from sqlalchemy import make_url

    url = make_url(pg_url)
    with psycopg.connect(host=url.host, port=url.port, user=url.username, password=url.password, dbname="postgres",
                         autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (url.database,))


def test_a_write_right_after_the_server_dropped_its_connection_is_done_on_a_new_one(pg_url):
    """Within PING_AFTER of a connection's last use nothing checks it first: the writer (saves, drafts) and every
    other store call of a run and of the page (`in_thread`: claims, holds, history, a link's lookup) run their
    transaction once more on a live connection instead of failing."""
    import asyncio

    from sqlalchemy.exc import OperationalError

    from rater.store.engine import again_if_dropped, in_thread, session_scope
    from rater.store.items import count_items
    from rater.store.writer import StoreWriter

    engine = create_store_engine(pg_url)

    def count() -> int:
        with session_scope(engine) as session:
            return count_items(session)

    async def write_through_the_writer() -> int:
        writer = StoreWriter(engine)
        try:
            await writer.submit(count_items)  # the pool now holds the writer's connection
            end_every_backend(pg_url)
            return await writer.submit(count_items)
        finally:
            await writer.close()
    assert asyncio.run(write_through_the_writer()) == 0
    count()
    end_every_backend(pg_url)
    assert again_if_dropped(count) == 0
    count()
    end_every_backend(pg_url)
    assert asyncio.run(in_thread(count)) == 0
    count()
    end_every_backend(pg_url)
    with pytest.raises(OperationalError):  # what the transaction meets without the second run
        count()
    engine.dispose()


def test_a_pooled_connection_the_server_dropped_is_replaced_not_used(pg_url, monkeypatch):
    """The first request after the database comes back (here: every backend ended by the server) works, once the
    pooled connection has lain unused for PING_AFTER seconds; a connection in steady use is not checked first."""
    from rater.store import engine as store
    from rater.store.engine import session_scope
    from rater.store.items import count_items

    monkeypatch.setattr(store, "PING_AFTER", 0.3)
    engine = create_store_engine(pg_url)
    pings = []
    real_ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda connection: pings.append(1) or real_ping(connection))
    for _ in range(3):  # a busy server's short transactions, one after another: no round trip to check
        with session_scope(engine) as session:
            assert count_items(session) == 0  # the pool now holds a connection
    assert pings == []
    end_every_backend(pg_url)
    time.sleep(0.4)
    with session_scope(engine) as session:
        assert count_items(session) == 0
    assert pings == [1]
    engine.dispose()
