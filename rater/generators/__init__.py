"""Distractor generators: an abstract base plus the `rater.generators` entry points, like raters."""

from rater.core.plugins import PluginGroup
from rater.generators.base import Generator

GENERATORS = PluginGroup("rater.generators", "generator")

__all__ = ["GENERATORS", "Generator"]
