"""Typed configuration files: YAML read into pydantic models that forbid unknown keys, so a misspelt key or value
stops with the file, the entry and the key named instead of running on a silent default."""

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from rater.core.errors import InputError

Model = TypeVar("Model", bound=BaseModel)


def read_yaml(path: Path, what: str) -> Any:
    """The YAML document in `path` (None when the file is empty); unreadable or invalid YAML is an InputError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Cannot read {what} {path}: {exc.strerror}.", "check the path and its permissions") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(f"{path} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}.",
                         f"fix the {what}") from exc


def validated(model: type[Model], data: Any, path: Path, what: str, entry_level: int = 0) -> Model:
    """`data` checked against `model`; the error names the file, the entry (the key at `entry_level` of the error's
    location, when there is one) and the key, with what was found."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(error, entry_level) for error in exc.errors()[:5]]
        more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        raise InputError(f"{path}: " + "; ".join(problems) + more + ".", f"fix the {what}") from None


def _describe(error: Any, entry_level: int) -> str:  # (pydantic's ErrorDetails)
    location = [str(part) for part in error["loc"]]
    entry = location[entry_level] if entry_level and len(location) > entry_level else None
    key = ".".join(location[entry_level + 1:] if entry else location) or "(top level)"
    found = f" (found {error['input']!r})" if error["type"] != "missing" and not isinstance(error["input"], dict) else ""
    message = error["msg"].replace("Extra inputs are not permitted", "unknown key")
    return (f"entry {entry!r}, " if entry else "") + f"key {key!r}: {message}{found}"
