"""No traceback for any mistake a user can make: every command of the CLI (found by walking the Typer app, so new
commands join by themselves) against each kind of bad database, a few bad arguments, and the panel for a bug."""

import os
import re
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rater.cli import app
from tests.conftest import import_items

NO_DATABASE = {"raters", "generators"}  # commands that never open the database


def commands() -> list[tuple[str, ...]]:
    def walk(command, path):
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                yield from walk(sub, (*path, name))
        else:
            yield path, command
    return list(walk(typer.main.get_command(app), ()))


def arguments(path: tuple[str, ...], command, folder: Path) -> list[str]:
    """The command with a plausible value for every required parameter (a new required parameter: add it here)."""
    values = {"paths": str(folder / "items.jsonl"), "stage": "sft", "model": str(folder / "model"),
              "output": str(folder / "out.json"), "judge": "gpt", "against": "anna", "source": "baseline",
              "name": "blind", "sources": "human", "judges": "gpt,rules", "target_width": "0.1"}
    if path == ("export", "kto"):  # its default format, trl, writes JSON Lines
        values["output"] = str(folder / "out.jsonl")
    args = list(path)
    for param in command.params:
        if not param.required:
            continue
        assert param.name in values, f"`rater {' '.join(path)}`: give the sweep a value for {param.name!r}"
        args += [values[param.name]] if not param.opts[0].startswith("-") else [param.opts[0], values[param.name]]
    extra = {("generate",): ["--generator", "baseline"], ("train",): ["-o", str(folder / "trained")]}
    return args + extra.get(path, [])


def flat(result) -> str:
    return " ".join(re.sub("[│╭╮╰╯─]", " ", result.stderr + result.output).split())


def sweep(db: str, folder: Path, problem: str) -> None:
    """Every command against the database `db`: a panel naming `problem`, exit 2, no traceback."""
    runner = CliRunner()
    failures = []
    for path, command in commands():
        result = runner.invoke(app, ["--db", db, *arguments(path, command, folder)])
        text = flat(result)
        if "Traceback" in text or result.exception and not isinstance(result.exception, SystemExit):
            failures.append(f"rater {' '.join(path)}: a traceback / {result.exception!r}")
        elif path[0] in NO_DATABASE:
            if result.exit_code != 0:
                failures.append(f"rater {' '.join(path)} needs no database, yet exited {result.exit_code}: {text}")
        elif result.exit_code != 2 or problem not in text:
            failures.append(f"rater {' '.join(path)}: exit {result.exit_code}, {text[:300]}")
    assert not failures, "\n".join(failures)
    assert len(commands()) >= 20  # the walk found the whole CLI


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """Input files the sweep's commands read, and RATER_HOME for any log."""
    (tmp_path / "items.jsonl").write_text('{"context": "T.", "question": "F?", "answer": "s", "distractors": ["a"]}\n')
    monkeypatch.setenv("RATER_HOME", str(tmp_path / "home"))
    return tmp_path


def unchanged(path: Path):
    before = (path.read_bytes(), sorted(p.name for p in path.parent.iterdir()))
    return lambda: (path.read_bytes(), sorted(p.name for p in path.parent.iterdir())) == before


def test_a_file_that_is_not_a_database(folder):
    bad = folder / "corrupt.db"
    bad.write_bytes(b"these are my notes, not a database\n" * 10)
    same = unchanged(bad)
    sweep(str(bad), folder, "is not a SQLite database")
    assert same()


def test_a_database_kind_that_is_not_supported(folder):
    sweep("mongodb://127.0.0.1/rater", folder, "rater does not support mongodb databases")


def test_a_supported_kind_whose_driver_is_missing(folder):
    sweep("postgresql+pg8000://anna:s3cret@127.0.0.1/rater", folder, "not installed")
    result = CliRunner().invoke(app, ["--db", "postgresql+pg8000://anna:s3cret@127.0.0.1/rater", "db", "stats"])
    assert "s3cret" not in flat(result) and "pip install 'rater[postgres]'" in flat(result)


def rater_process(*args: str) -> None:
    """rater in a process of its own, so no connection of this test process stays open on the database."""
    subprocess.run([sys.executable, "-m", "rater.cli", *args], check=True, capture_output=True)


def test_a_database_locked_longer_than_the_busy_timeout(folder, db_path, monkeypatch):
    rater_process("--db", str(db_path), "demo")
    monkeypatch.setenv("RATER_BUSY_TIMEOUT_MS", "100")
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:  # another program with the whole file to itself
        connection = sqlite3.connect(db_path, check_same_thread=False)
        connection.execute("PRAGMA locking_mode = EXCLUSIVE")
        connection.execute("BEGIN EXCLUSIVE")
        connection.execute("UPDATE item SET answer = answer")
        locked.set()
        release.wait()
        connection.rollback()
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        sweep(str(db_path), folder, "stayed locked by another program for 0.1 s")
    finally:
        release.set()
        holder.join()


def mount_tmpfs(path: Path, size: str, *extra: str) -> bool:
    path.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *extra]), "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MB file system (tmpfs), where this machine lets us mount one."""
    disk = tmp_path / "disk"
    if os.geteuid() != 0 or not mount_tmpfs(disk, "1m"):
        pytest.skip("mounting a small tmpfs needs root with mount rights (CI has them)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_read_only_database(folder, small_disk):
    database = small_disk / "rater.db"
    rater_process("--db", str(database), "demo")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    same = unchanged(database)
    sweep(str(database), folder, "is read-only")
    assert same()


def test_a_full_disk_keeps_everything_saved_before(folder, small_disk):
    database = small_disk / "rater.db"
    runner = CliRunner()
    rater_process("--db", str(database), "demo")
    filler = small_disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:  # fill what is left of the disk
        while os.write(descriptor, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(descriptor)
    big = folder / "big.jsonl"
    big.write_text("".join(f'{{"context": "Text {n} {"x" * 300}", "question": "F {n}?", "answer": "s", '
                           f'"distractors": ["a {n}", "b {n}"]}}\n' for n in range(3000)))
    result = runner.invoke(app, ["--db", str(database), "import", str(big)])
    assert result.exit_code == 2 and "Traceback" not in flat(result), flat(result)
    assert "is full" in flat(result)
    filler.unlink()
    stats = runner.invoke(app, ["--db", str(database), "db", "stats"])
    assert stats.exit_code == 0 and "demo" in stats.output  # the demo set is still there


def test_bad_arguments_get_a_panel_and_exit_2(cli, folder):
    import_items(cli, folder, 2)
    for args, needle in ((("rate", "--overlap", "0"), "1 or more"), (("rate", "--order", "sideways"), "Unknown order"),
                         (("import", str(folder / "missing.json")), "no such file"),
                         (("generate", "--generator", "baseline", "--source", "b", "--num", "99"), "--num"),
                         (("export", "pref", "-o", str(folder / "p.json"), "--format", "yaml"), "yaml"),
                         (("eval", "rate", "nosuchset"), "No evaluation set named 'nosuchset'")):
        result = cli(*args, ok=False)
        assert result.exit_code == 2 and "Traceback" not in flat(result), (args, flat(result))
        assert needle in flat(result), (args, flat(result))


def test_a_bug_is_one_short_panel_and_a_log_file_without_secrets(cli, folder, monkeypatch):
    import rater.cli.imports

    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-abcdefghijklmnop")

    def broken(*_args, **_kwargs):
        raise ZeroDivisionError("key sk-live-abcdefghijklmnop and url postgresql://anna:pg-pass-123@db/x")

    monkeypatch.setattr(rater.cli.imports, "ingest", broken)
    result = cli.runner.invoke(app, ["--db", str(cli.db_path), "import", str(folder / "items.jsonl")])
    text = flat(result)
    assert result.exit_code == 1 and "Traceback" not in text and "this is a bug" in text
    assert "rater --db" in text and "import" in text
    logs = list((folder / "home" / "logs").glob("bug-*.log"))
    assert len(logs) == 1 and str(logs[0]) in text.replace(" ", "") or logs[0].name in text
    log = logs[0].read_text()
    assert "Traceback" in log and "ZeroDivisionError" in log
    assert "sk-live-abcdefghijklmnop" not in log and "pg-pass-123" not in log and "***" in log


@pytest.mark.parametrize("args", [["serve", "--help"], ["--help"], ["judge", "--help"]])
def test_a_reader_that_goes_away_ends_the_output_quietly(args, tmp_path):
    """`rater serve --help | head`: the help's reader closes the pipe; no bug panel, no traceback."""
    code = ("import typer._click.core as core\n"
            "def gone(self):  # the help's reader has closed the pipe when the help is written\n"
            "    raise BrokenPipeError(32, 'Broken pipe')\n"
            "core.Context.get_help = gone\n"
            "import sys\n"
            f"sys.argv = ['rater', *{args!r}]\n"
            "from rater.cli import main\n"
            "main()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "RATER_HOME": str(tmp_path), "PYTHONPATH": str(Path(__file__).parents[1])})
    assert result.returncode == 1
    assert "bug" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "logs").exists()  # no bug log written
