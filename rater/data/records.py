"""Plain records that importers produce and the store writes: no database, no I/O."""

from dataclasses import dataclass, field

from rater.core.domain import RaterKind


@dataclass(frozen=True)
class NewDistractor:
    text: str
    source: str
    accepted: bool | None = None  # a rating that comes with the file (preference rows)
    score: float | None = None


@dataclass
class NewItem:
    context: str
    question: str
    answer: str
    record: str
    split: str | None = None
    distractors: list[NewDistractor] = field(default_factory=list)


@dataclass
class ImportBatch:
    """What one file holds. `rater_name` owns the ratings carried by distractors; `eval_set` keeps item order."""

    path: str
    format: str
    dataset: str
    items: list[NewItem]
    rater_name: str | None = None
    rater_kind: str = RaterKind.llm
    eval_set: str | None = None
    records: int = 0
