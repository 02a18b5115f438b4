"""Reading JSON and JSON Lines files and checking record fields, with errors that name file, record and field."""

import json
from pathlib import Path
from typing import Any

from rater.core.errors import InputError


def read_json(path: Path) -> Any:
    """A list of records for a `.jsonl` file (one record or many), else the JSON document; a file that is not
    one JSON document but several lines of JSON is read as JSON Lines too."""
    if not path.exists():
        raise InputError(f"{path}: no such file.", "check the path")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a file.", "pass the JSON file inside it")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}).",
                         "save the file as UTF-8 JSON") from exc
    if path.suffix.lower() == ".jsonl":
        return _read_json_lines(path, text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as first:
        if len([line for line in text.splitlines() if line.strip()]) < 2:
            raise InputError(f"{path}: invalid JSON at line {first.lineno}, column {first.colno}: {first.msg}.",
                             "fix the file or export it again") from first
        return _read_json_lines(path, text)


def _read_json_lines(path: Path, text: str) -> list:
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    records = []
    for number, line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: invalid JSON on line {number}: {exc.msg}.",
                             "fix that line or export the file again") from exc
    return records


def text_field(record: Any, name: str, where: str, *, allow_empty: bool = False) -> str:
    """`record[name]` as stripped text; an InputError naming `where` and the field otherwise."""
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected an object, found {type(record).__name__}.", "fix that record")
    if name not in record:
        raise InputError(f"{where}: field '{name}' is missing.", "add the field or fix that record")
    value = record[name]
    if not isinstance(value, str):
        raise InputError(f"{where}: field '{name}' must be text, found {type(value).__name__}.",
                         "fix that record")
    value = value.strip()
    if not value and not allow_empty:
        raise InputError(f"{where}: field '{name}' is empty.", "fill it in or remove that record")
    return value


def list_field(record: dict, name: str, where: str) -> list:
    value = record.get(name) if isinstance(record, dict) else None
    if not isinstance(value, list):
        raise InputError(f"{where}: field '{name}' must be a list.", "fix that record")
    return value


def unique_texts(texts: list[str]) -> list[str]:
    """Texts without empty ones and repeats, first occurrence kept."""
    seen: set[str] = set()
    kept = []
    for text in texts:
        if text and text not in seen:
            seen.add(text)
            kept.append(text)
    return kept
