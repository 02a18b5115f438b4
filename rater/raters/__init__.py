"""Rater plugins, found through the `rater.raters` entry points exactly as third-party raters are."""

from rater.core import plugins
from rater.raters.base import Rater

GROUP = "rater.raters"

__all__ = ["GROUP", "Rater", "installed_raters", "load_rater"]


def installed_raters() -> list[str]:
    """Names of the installed raters; nothing is imported."""
    return plugins.installed(GROUP)


def load_rater(name: str) -> type[Rater]:
    return plugins.load(GROUP, name, "rater")
