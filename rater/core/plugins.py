"""Entry-point plugins (raters, generators): listing names imports nothing; an unknown name lists the installed."""

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from rater.core.errors import UnknownPluginError


@dataclass(frozen=True)
class PluginGroup:
    """One entry-point group, such as `rater.raters`; `what` names its plugins in messages ("rater")."""

    group: str
    what: str

    def installed(self) -> list[str]:
        """The installed plugins' names; nothing is imported."""
        return sorted(entry_points(group=self.group).names)

    def load(self, name: str) -> Any:
        found = entry_points(group=self.group, name=name)
        if not found:
            names = ", ".join(self.installed()) or "none"
            raise UnknownPluginError(f"No {self.what} named {name!r} is installed.", f"installed {self.what}s: {names}")
        try:
            return next(iter(found)).load()
        except ImportError as exc:
            raise UnknownPluginError(f"The {self.what} {name!r} needs packages that are not installed ({exc.name}).",
                                     "pip install 'rater[train]' (or run `make test`, which installs it)") from exc
