"""Where rater keeps user state and finds its shipped texts: RATER_HOME, the instructions and the judge prompt."""

import os
from importlib.resources import files
from pathlib import Path


def rater_home() -> Path:
    """The one root for user state (judges file, calibrations, logs): $RATER_HOME, else ~/.rater."""
    return Path(os.environ.get("RATER_HOME") or Path.home() / ".rater")


def instructions_text(name: str) -> str:
    """A shipped text of the top-level instructions/ folder (installed as rater.instructions)."""
    return (files("rater.instructions") / name).read_text(encoding="utf-8")
