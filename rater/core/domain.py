"""What raters see and return: an item with its distractors, and one judgement per distractor."""

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


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


class RaterKind(StrEnum):
    """Who a rater is (stored as rater.kind): a teacher, an LLM judge or a rule check."""

    human = "human"
    llm = "llm"
    rule = "rule"


HUMAN_SOURCE = "human"  # the source label of distractors written by people (a dataset's own)


@dataclass(frozen=True)
class DistractorView:
    id: int
    text: str
    source: str


@dataclass(frozen=True)
class Judgement:
    distractor_id: int
    accepted: bool
    score: float | None = None
    limit: float | None = None
    reason: str | None = None
    rationale: str | None = None


@dataclass(frozen=True)
class ItemView:
    """An item as the runner presents it. `previous` holds the rater's own saved judgements when an item is
    presented again after a revisit request; `earlier` counts the items of this run a rater could go back to."""

    id: int
    context: str
    question: str
    answer: str
    distractors: tuple[DistractorView, ...]
    previous: tuple[Judgement, ...] = ()
    earlier: int = 0


@dataclass(frozen=True)
class Revisit:
    """A rater's answer to `rate(item)` asking to see the previous item of the run again (teachers going back);
    the runner presents it with `previous` filled in, and the current item comes back after it."""


class Records(Protocol):
    """Where a rater keeps records of its own beside its judgements during a run (an LLM judge's requests): the
    run commits each as soon as it can, off the event loop; the future says when it is stored, or why not."""

    def judge_request(self, values: dict[str, Any]) -> "asyncio.Future[Any]":
        """Store one request to an LLM judge (the columns of the judge_request table)."""
        ...
