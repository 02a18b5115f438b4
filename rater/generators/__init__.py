"""Distractor generators: an abstract base plus the `rater.generators` entry points, like raters."""

from importlib.metadata import entry_points

from rater.errors import UnknownPluginError
from rater.generators.base import Generator

GROUP = "rater.generators"

__all__ = ["GROUP", "Generator", "installed_generators", "load_generator"]


def installed_generators() -> list[str]:
    return sorted(entry_points(group=GROUP).names)


def load_generator(name: str) -> type[Generator]:
    found = entry_points(group=GROUP, name=name)
    if not found:
        names = ", ".join(installed_generators()) or "none"
        raise UnknownPluginError(f"No generator named {name!r} is installed.", f"installed generators: {names}")
    try:
        return next(iter(found)).load()
    except ImportError as exc:
        raise UnknownPluginError(f"The {name!r} generator needs packages that are not installed ({exc.name}).",
                                 "pip install 'rater[train]' (or run `make test`, which installs it)") from exc
