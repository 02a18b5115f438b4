"""Rater plugins, found through the `rater.raters` entry points exactly as third-party raters are."""

from importlib.metadata import entry_points

from rater.errors import UnknownPluginError
from rater.raters.base import Rater

GROUP = "rater.raters"

__all__ = ["GROUP", "Rater", "installed_raters", "load_rater"]


def installed_raters() -> list[str]:
    """Names of the installed raters; nothing is imported."""
    return sorted(entry_points(group=GROUP).names)


def load_rater(name: str) -> type[Rater]:
    found = entry_points(group=GROUP, name=name)
    if not found:
        names = ", ".join(installed_raters()) or "none"
        raise UnknownPluginError(f"No rater named {name!r} is installed.", f"installed raters: {names}")
    return next(iter(found)).load()
