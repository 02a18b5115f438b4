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
    panel = "panel"  # several raters' judgements combined (`rater panel create`)


HUMAN_SOURCE = "human"  # the source label of distractors written by people (a dataset's own)


@dataclass(frozen=True)
class DistractorView:
    id: int
    text: str
    source: str


@dataclass(frozen=True)
class Judgement:
    """One rater's decision on one distractor. `position` is where it stood on the rater's screen (0: first; the
    runner fills it in), `seconds` how long a teacher had the item on screen, `revision` the stored revision (when
    read back)."""

    distractor_id: int
    accepted: bool
    score: float | None = None
    limit: float | None = None
    reason: str | None = None
    rationale: str | None = None
    position: int | None = None
    seconds: float | None = None
    revision: int | None = None


@dataclass(frozen=True)
class ItemView:
    """An item as the runner presents it, its distractors in the order to show them. `previous` holds the rater's
    own saved judgements (an item presented again: a revisit, a history entry, or after another window saved it);
    `draft` a teacher's unsaved ticks of it; `earlier` how many of the rater's rated items lie before it (0: none to
    go back to); `skipped` how many items the rater has skipped so far; `notes` what changed since it was rated."""

    id: int
    context: str
    question: str
    answer: str
    distractors: tuple[DistractorView, ...]
    previous: tuple[Judgement, ...] = ()
    earlier: int = 0
    draft: tuple[Judgement, ...] = ()
    skipped: int = 0
    notes: tuple[str, ...] = ()
    uncertainty: float | None = None  # how unsure the judges are about it (None: no judge rated it)

    @property
    def revisited(self) -> bool:
        return bool(self.previous)

    def new_distractors(self) -> set[int]:
        """Of a revisited item, the distractors added since the rater rated it."""
        rated = {j.distractor_id for j in self.previous}
        return {d.id for d in self.distractors if d.id not in rated} if self.previous else set()


@dataclass(frozen=True)
class LookAgain:
    """A teacher's answer to "nothing is left for you" while work is shared out: look for an item again (one whose
    lease lapsed or that another teacher released or skipped meanwhile)."""


@dataclass(frozen=True)
class Revisit:
    """A rater's answer to `rate(item)` asking to see an item it rated again: the one before (teachers going back,
    also across sessions), or `item_id` (opened from the rater's history). The runner presents it with `previous`
    filled in, and the current item comes back after it."""

    item_id: int | None = None


class Records(Protocol):
    """Where a rater keeps records of its own beside its judgements during a run (an LLM judge's requests): the
    run commits each as soon as it can, off the event loop; the future says when it is stored, or why not."""

    def judge_request(self, values: dict[str, Any]) -> "asyncio.Future[Any]":
        """Store one request to an LLM judge (the columns of the judge_request table)."""
        ...

    def draft(self, item_id: int, marks: dict[int, tuple[bool, str | None]]) -> "asyncio.Future[Any]":
        """Keep a teacher's unsaved ticks and reasons of an item ({distractor id: (ticked, reason)}; empty: none)."""
        ...
