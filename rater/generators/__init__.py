"""Distractor generators: an abstract base plus the `rater.generators` entry points, like raters."""

from rater.core import plugins
from rater.generators.base import Generator

GROUP = "rater.generators"

__all__ = ["GROUP", "Generator", "installed_generators", "load_generator"]


def installed_generators() -> list[str]:
    return plugins.installed(GROUP)


def load_generator(name: str) -> type[Generator]:
    return plugins.load(GROUP, name, "generator")
