"""What raters see and return: an item with its distractors, and one judgement per distractor."""

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Why a distractor is rejected (Kalpakchi & Boye); stored by value, shown by label."""

    not_wrong = "not_wrong"
    unreasonable = "unreasonable"
    grammatically_wrong = "grammatically_wrong"
    identical = "identical"
    obviously_wrong = "obviously_wrong"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


@dataclass(frozen=True)
class DistractorView:
    id: int
    text: str
    source: str


@dataclass(frozen=True)
class ItemView:
    id: int
    context: str
    question: str
    answer: str
    distractors: tuple[DistractorView, ...]


@dataclass(frozen=True)
class Judgement:
    distractor_id: int
    accepted: bool
    score: float | None = None
    limit: float | None = None
    reason: str | None = None
    rationale: str | None = None
