"""Published Alpaca rows: SFT rows (`output` is `<false>` lines) and preference rows (`output` = [chosen, rejected])."""

from pathlib import Path
from typing import Any

from rater.core.domain import HUMAN_SOURCE, RaterKind
from rater.core.errors import InputError
from rater.core.prompts import parse_false_tags, parse_instruction
from rater.data.formats.common import text_field
from rater.data.records import ImportBatch, NewDistractor, NewItem

SFT = "alpaca-sft"
PREF = "alpaca-pref"


def _rows(data: Any) -> list | None:
    if isinstance(data, list) and data and all(isinstance(r, dict) and "instruction" in r for r in data[:5]):
        return data
    return None


def detect_sft(data: Any) -> bool:
    rows = _rows(data)
    return rows is not None and isinstance(rows[0].get("output"), str)


def detect_pref(data: Any) -> bool:
    rows = _rows(data)
    return rows is not None and (isinstance(rows[0].get("output"), list) or "chosen" in rows[0])


def _instruction(row: Any, where: str) -> tuple[str, str, str]:
    raw = row.get("instruction") if isinstance(row, dict) else None
    parsed = parse_instruction(raw) if isinstance(raw, str) else None
    if parsed is None:
        raise InputError(f"{where}: field 'instruction' is not in the form "
                         "'<context> C </context>\\n<question> Q </question>\\n<true> A </true>\\n'.",
                         "fix that row")
    return parsed


class _Grouper:
    """Rows of one instruction become one item, in first-seen order."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str], NewItem] = {}

    def item(self, key: tuple[str, str, str], record: str) -> NewItem:
        if key not in self.items:
            self.items[key] = NewItem(context=key[0], question=key[1], answer=key[2], record=record)
        return self.items[key]


def parse_sft(data: Any, path: Path, dataset: str, source: str = HUMAN_SOURCE) -> ImportBatch:
    grouper = _Grouper()
    for index, row in enumerate(data):
        where = f"{path}: record {index}"
        key = _instruction(row, where)
        output = text_field(row, "output", where)
        item = grouper.item(key, f"{path.stem}:{index}")
        known = {d.text for d in item.distractors}
        for text in parse_false_tags(output):
            if text and text != key[2] and text not in known:
                known.add(text)
                item.distractors.append(NewDistractor(text, source))
    return ImportBatch(str(path), SFT, dataset, list(grouper.items.values()), records=len(data))


def parse_pref(data: Any, path: Path, dataset: str, source: str = "sft") -> ImportBatch:
    """Chosen and rejected distractors stored with accepted / rejected ratings by a rater named `dataset`."""
    grouper = _Grouper()
    for index, row in enumerate(data):
        where = f"{path}: record {index}"
        key = _instruction(row, where)
        chosen, rejected = _pair(row, where)
        item = grouper.item(key, f"{path.stem}:{index}")
        known = {d.text for d in item.distractors}
        for text, accepted in ((chosen, True), (rejected, False)):
            if text not in known:  # a distractor repeated in several pairs keeps its first label
                known.add(text)
                item.distractors.append(NewDistractor(text, source, accepted=accepted))
    return ImportBatch(str(path), PREF, dataset, list(grouper.items.values()), rater_name=dataset,
                       rater_kind=RaterKind.llm, records=len(data))


def _pair(row: dict, where: str) -> tuple[str, str]:
    pair: object
    if "chosen" in row:
        pair = [text_field(row, "chosen", where), text_field(row, "rejected", where)]
    else:
        pair = row.get("output")
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise InputError(f"{where}: field 'output' must be a list [chosen, rejected] of two strings.",
                             "fix that row")
    texts = []
    for name, value in zip(("chosen", "rejected"), pair):
        tags = parse_false_tags(value)
        text = tags[0] if len(tags) == 1 else value.strip()
        if not text:
            raise InputError(f"{where}: the {name} distractor is empty.", "fix that row")
        texts.append(text)
    return texts[0], texts[1]
