"""The annotation tool's export: one object per context, each group a question, its answer and distractors."""

from pathlib import Path
from typing import Any

from rater.core.domain import HUMAN_SOURCE
from rater.core.errors import InputError
from rater.data.formats.common import list_field, text_field, unique_texts
from rater.data.records import ImportBatch, NewDistractor, NewItem

NAME = "annotations"
YES_NO = {"ja", "nej"}


def _records(data: Any) -> list | None:
    if isinstance(data, dict) and "annotations" in data:
        return [data]
    if isinstance(data, list) and data and all(isinstance(r, dict) and "annotations" in r for r in data[:5]):
        return data
    return None


def detect(data: Any) -> bool:
    return _records(data) is not None


def parse(data: Any, path: Path, dataset: str) -> ImportBatch:
    items: list[NewItem] = []
    records = _records(data) or []
    for index, record in enumerate(records):
        where = f"{path}: record {index}"
        context = text_field(record, "context", where)
        for number, group in enumerate(list_field(record, "annotations", where)):
            item = _group_item(group, context, f"{where}, group {number}", f"{path.stem}:{index}:{number}")
            if item is not None:
                items.append(item)
    return ImportBatch(str(path), NAME, dataset, items, records=len(records))


def _group_item(group: Any, context: str, where: str, key: str) -> NewItem | None:
    if not isinstance(group, list):
        raise InputError(f"{where}: a group must be a list of annotations.", "fix that group")
    parts: dict[str, list[str]] = {"Question": [], "Correct answer": [], "Distractor": []}
    for number, entry in enumerate(sorted(group, key=lambda e: _order(e, where))):
        at = f"{where}, annotation {number}"
        name = entry["marker"].get("name")
        if name not in parts:
            raise InputError(f"{at}: marker name must be Question, Correct answer or Distractor, found {name!r}.",
                             "fix that annotation")
        parts[name].append(text_field(entry, "content", at))
    if len(parts["Question"]) != 1 or len(parts["Correct answer"]) != 1:
        raise InputError(f"{where}: a group needs exactly one Question and one Correct answer.", "fix that group")
    answer = parts["Correct answer"][0]
    if answer.lower().rstrip(".") in YES_NO:
        return None  # yes/no questions have no distractors worth rating
    texts = [d for d in unique_texts(parts["Distractor"]) if d != answer]
    return NewItem(context=context, question=parts["Question"][0], answer=answer, record=key,
                   distractors=[NewDistractor(text, HUMAN_SOURCE) for text in texts])


def _order(entry: Any, where: str) -> int:
    marker = entry.get("marker") if isinstance(entry, dict) else None
    if not isinstance(marker, dict) or not isinstance(marker.get("order"), int):
        raise InputError(f"{where}: every annotation needs a marker with an integer 'order'.", "fix that group")
    return marker["order"]
