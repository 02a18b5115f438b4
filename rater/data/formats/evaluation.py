"""Blind-evaluation sets (`context, question, answer, distractors, sources`) and rater's own item files."""

from pathlib import Path
from typing import Any

from rater.core.domain import HUMAN_SOURCE
from rater.core.errors import InputError
from rater.data.formats.common import list_field, text_field
from rater.data.records import ImportBatch, NewDistractor, NewItem

EVALUATION = "evaluation"
ITEMS = "items"


def source_label(raw: str) -> str:
    """`dataset` -> human, `*predict_sft*` -> sft, `*predict_dpo*` -> dpo; other labels kept (file stem if a path)."""
    lowered = raw.lower()
    if lowered == "dataset":
        return HUMAN_SOURCE
    for label in ("sft", "dpo", "kto"):
        if f"predict_{label}" in lowered:
            return label
    return Path(raw).stem if "/" in raw else raw


def _records(data: Any, key: str) -> list | None:
    if isinstance(data, list) and data and all(isinstance(r, dict) and key in r for r in data[:5]):
        return data
    return None


def detect_evaluation(data: Any) -> bool:
    return _records(data, "sources") is not None


def detect_items(data: Any) -> bool:
    return _records(data, "distractors") is not None and not detect_evaluation(data)


def parse_evaluation(data: Any, path: Path, dataset: str) -> ImportBatch:
    items = []
    for index, record in enumerate(data):
        where = f"{path}: record {index}"
        texts = [text_field({"d": d}, "d", f"{where}, distractor {n}")
                 for n, d in enumerate(list_field(record, "distractors", where))]
        sources = list_field(record, "sources", where)
        if len(sources) != len(texts) or not all(isinstance(s, str) for s in sources):
            raise InputError(f"{where}: field 'sources' must hold one label per distractor.", "fix that record")
        item = _item(record, where, f"{path.stem}:{index}")
        # The same text from two sources fills two slots, each rated on its own; the same text twice from one
        # source is one distractor and keeps its first slot.
        item.distractors = [NewDistractor(t, s) for t, s in dict.fromkeys(zip(texts, map(source_label, sources)))]
        items.append(item)
    return ImportBatch(str(path), EVALUATION, dataset, items, eval_set=dataset, records=len(items))


def parse_items(data: Any, path: Path, dataset: str) -> ImportBatch:
    items = []
    for index, record in enumerate(data):
        where = f"{path}: record {index}"
        source = text_field(record, "source", where) if "source" in record else HUMAN_SOURCE
        item = _item(record, where, f"{path.stem}:{index}")
        item.split = record.get("split")
        texts = [text_field({"d": d}, "d", f"{where}, distractor {n}")
                 for n, d in enumerate(list_field(record, "distractors", where))]
        item.distractors = [NewDistractor(t, source) for t in dict.fromkeys(texts) if t != item.answer]
        items.append(item)
    return ImportBatch(str(path), ITEMS, dataset, items, records=len(items))


def _item(record: dict, where: str, key: str) -> NewItem:
    return NewItem(context=text_field(record, "context", where), question=text_field(record, "question", where),
                   answer=text_field(record, "answer", where), record=key)
