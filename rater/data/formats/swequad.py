"""SweQUAD-MC: `{"data": [{"context", "question", "choices": [...]}]}`, rebuilt exactly as the published splits."""

from pathlib import Path
from typing import Any

from rater.core.domain import HUMAN_SOURCE
from rater.core.errors import InputError
from rater.data.formats.common import list_field, text_field, unique_texts
from rater.data.records import ImportBatch, NewDistractor, NewItem

NAME = "swequad"
SPLITS = {"training": "train", "train": "train", "dev": "dev", "test": "test"}


def detect(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("data"), list) and all(
        isinstance(r, dict) and "choices" in r for r in data["data"][:5])


def option_text(choice: dict, where: str) -> str:
    """`extra.comment` (a grammatical reformulation) when present and non-empty, else `text`."""
    extra = choice.get("extra")
    if extra is not None and not isinstance(extra, dict):
        raise InputError(f"{where}: field 'extra' must be null or an object.", "fix that record")
    comment = (extra or {}).get("comment")
    if isinstance(comment, str) and comment.strip():
        return comment.strip()
    return text_field(choice, "text", where)


def parse(data: Any, path: Path, dataset: str) -> ImportBatch:
    split = SPLITS.get(path.stem)
    items = [_item(record, f"{path}: record {index}", f"{path.stem}:{index}", split)
             for index, record in enumerate(data["data"])]
    return ImportBatch(str(path), NAME, dataset, items, records=len(items))


def _item(record: dict, where: str, key: str, split: str | None) -> NewItem:
    answers, distractors = [], []
    for number, choice in enumerate(list_field(record, "choices", where)):
        at = f"{where}, choice {number}"
        kind = choice.get("type") if isinstance(choice, dict) else None
        if kind == "Correct answer":
            answers.append(option_text(choice, at))
        elif kind == "Distractor":
            distractors.append(option_text(choice, at))
        else:
            raise InputError(f"{at}: field 'type' must be 'Correct answer' or 'Distractor', found {kind!r}.",
                             "fix that choice")
    if not answers:
        raise InputError(f"{where}: no choice has type 'Correct answer'.", "add the correct answer")
    # A few records merge two annotators: the published data kept the last correct answer.
    answer = answers[-1]
    texts = [d for d in unique_texts(distractors) if d not in answers]
    return NewItem(
        context=text_field(record, "context", where),
        question=text_field(record, "question", where),
        answer=answer, record=key, split=split,
        distractors=[NewDistractor(text, HUMAN_SOURCE) for text in texts],
    )
