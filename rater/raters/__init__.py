"""Rater plugins, found through the `rater.raters` entry points exactly as third-party raters are."""

from rater.core.plugins import PluginGroup
from rater.raters.base import Rater

RATERS = PluginGroup("rater.raters", "rater")

__all__ = ["RATERS", "Rater"]
