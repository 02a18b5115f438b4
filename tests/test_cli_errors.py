"""User mistakes end in a red panel on stderr with the fix and exit code 2, never a traceback."""

import re
import sqlite3

from rater.cli import app


def assert_clean_error(result, *needles):
    assert result.exit_code == 2, result.output
    assert "rater: error" in result.stderr and "Fix:" in result.stderr
    assert "Traceback" not in result.stderr + result.output
    flat = " ".join(re.sub("[│╭╮╰╯─]", " ", result.stderr).split())
    for needle in needles:
        assert needle in flat


def test_missing_file(cli, tmp_path):
    assert_clean_error(cli("import", tmp_path / "nope.json", ok=False), "nope.json", "no such file")


def test_unknown_format(cli, tmp_path):
    path = tmp_path / "x.json"
    path.write_text("[]")
    assert_clean_error(cli("import", "--format", "csv", path, ok=False), "Unknown format", "swequad")


def test_invalid_json(cli, tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"data": [}')
    assert_clean_error(cli("import", path, ok=False), "invalid JSON", "line 1")


def test_database_folder_that_does_not_exist(cli, tmp_path):
    folder = tmp_path / "missing-folder" / "r.db"
    result = cli.runner.invoke(app, ["--db", str(folder), "db", "stats"])
    assert_clean_error(result, "does not exist")


def test_database_path_is_a_folder(cli, tmp_path):
    result = cli.runner.invoke(app, ["--db", str(tmp_path), "db", "stats"])
    assert_clean_error(result, "is a folder")


def test_newer_database(cli, db_path):
    cli("db", "stats")
    with sqlite3.connect(db_path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'ffff'")
    assert_clean_error(cli("db", "stats", ok=False), "newer rater", "upgrade rater")


def test_unknown_rater_lists_installed(cli):
    assert_clean_error(cli("judge", "--rater", "gpt9", ok=False), "gpt9", "rules")
