"""The wheel: built from the tree, it holds every source file and the top-level migrations/ and instructions/, and
an install of it alone (no source tree on the path) creates a database and reads the instructions."""

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("rater", "training", "migrations", "instructions")
SHIPPED_SUFFIXES = {".py", ".md", ".mako", ".jsonl", ".tcss", ".yaml"}


def installed_name(relative: Path) -> str:
    """Where a repository file lands inside the wheel."""
    parts = relative.parts
    if parts[0] in ("migrations", "instructions"):
        return "/".join(("rater",) + parts)
    return relative.as_posix()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the tree (so the build leaves nothing in the working copy)."""
    copy = tmp_path_factory.mktemp("src") / "rater"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.db*", "build", "dist",
                                                               "*.egg-info", ".pytest_cache"))
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(out), str(copy)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return next(out.glob("rater-*.whl"))


def test_wheel_holds_every_source_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {installed_name(p.relative_to(ROOT)) for top in SOURCES for p in (ROOT / top).rglob("*")
                if p.is_file() and p.suffix in SHIPPED_SUFFIXES and "__pycache__" not in p.parts}
    assert "rater/migrations/versions/0001_core_schema.py" in expected and "rater/instructions/rating.md" in expected
    assert expected - names == set()
    assert not any(n.startswith(("migrations/", "instructions/")) for n in names), "no top-level packages installed"


def test_installed_wheel_without_source_tree_creates_a_database_and_reads_instructions(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    # -S: no site processing, so the editable install's path hook is not loaded; the dependencies come from the
    # virtual environment's site-packages, rater only from the installed wheel.
    code = f"""
import sys
sys.path[:0] = [{str(target)!r}, {sysconfig.get_paths()['purelib']!r}]
import rater
assert rater.__file__.startswith({str(target)!r}), rater.__file__
from rater.core.paths import instructions_text
from rater.store.engine import create_store_engine, current_revision, head_revision
assert "Instruktioner" in instructions_text("rating.md") and "{{{{question}}}}" in instructions_text("judge_prompt.md")
engine = create_store_engine("sqlite:///{tmp_path / 'wheel.db'}")
assert current_revision(engine) == head_revision()
from rater.cli import main
sys.argv = ["rater", "--db", "{tmp_path / 'wheel.db'}", "demo"]
main()
"""
    result = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Read 12 records" in result.stdout
