"""Entry-point plugins (raters, generators): listing names imports nothing; an unknown name lists the installed."""

from importlib.metadata import entry_points

from rater.core.errors import UnknownPluginError


def installed(group: str) -> list[str]:
    return sorted(entry_points(group=group).names)


def load(group: str, name: str, what: str):
    found = entry_points(group=group, name=name)
    if not found:
        names = ", ".join(installed(group)) or "none"
        raise UnknownPluginError(f"No {what} named {name!r} is installed.", f"installed {what}s: {names}")
    try:
        return next(iter(found)).load()
    except ImportError as exc:
        raise UnknownPluginError(f"The {what} {name!r} needs packages that are not installed ({exc.name}).",
                                 "pip install 'rater[train]' (or run `make test`, which installs it)") from exc
