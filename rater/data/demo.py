"""The built-in demo set: short Swedish texts written for this project, one question and four distractors each."""

from importlib.resources import files
from pathlib import Path

from sqlmodel import Session

from rater.data.formats import parse_file
from rater.data.importing import ImportCounts, ingest


def demo_set_path() -> Path:
    return Path(str(files("rater.data") / "demo_set.jsonl"))


def load_demo(session: Session) -> ImportCounts:
    return ingest(session, batches=[parse_file(demo_set_path(), "items", "demo")])
