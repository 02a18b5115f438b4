"""The Rater interface every rater implements: teachers, LLM judges and rule checks alike."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from rater.core.domain import ItemView, Judgement, LookAgain, Records, Revisit
from rater.core.errors import RaterError


@dataclass(frozen=True)
class RunStart:
    """What a run starts with: the rater's id, the rating scope, the queue's size (for progress displays) and
    where the rater may keep records of its own (an LLM judge's requests)."""

    rater_id: int
    eval_set_id: int | None
    total: int  # items of the queue with something to rate
    pending: int  # of those, items with distractors this rater has not rated yet (with an overlap: items the
    #               study still needs ratings for)
    records: Records | None = None
    overlap: int | None = None  # work shared out, when the run started: each item goes to teachers until this many
    #                             have rated it


class StopRun(Exception):
    """Raised by a rater to end its run early (a teacher leaving); everything saved so far is kept."""


class Rater(ABC):
    """Rates one item's distractors at a time; the one runner (rater/raters/runner.py) drives it and saves.

    Capability flags tell the runner how: `max_concurrency` items may be in flight at once; an `interactive`
    rater (a person) gets one item at a time, a skipped item comes back at the end of the run, it may answer
    `Revisit()` to go back, and an item whose save failed is presented again.
    """

    kind: ClassVar[str]
    default_name: ClassVar[str]
    max_concurrency: int = 1  # a class's default; a rater may set its own (the LLM judge's --concurrency)
    interactive: ClassVar[bool] = False

    def __init__(self, name: str | None = None) -> None:
        self.name = name or self.default_name

    @abstractmethod
    async def rate(self, item: ItemView) -> list[Judgement] | Revisit:
        """One judgement per distractor of `item`; an empty list leaves the item unrated (skipped); an interactive
        rater may answer `Revisit()` to see the previous item again."""

    def started(self, run: RunStart) -> None:
        """Called by the runner before the first item."""

    async def exhausted(self, left: Sequence[ItemView] = ()) -> Revisit | LookAgain | None:
        """Called when nothing is left to rate but `left`, the items an interactive rater skipped twice; it may
        still go back or open one (`Revisit()`, `Revisit(item_id)`), or, work being shared out, look for an item
        again (`LookAgain()`)."""
        return None

    def beyond_k(self, item: ItemView) -> None:
        """The save of `item` came after the item had its K teachers (the hold on it had lapsed): kept, flagged."""

    def save_failed(self, item: ItemView, error: RaterError) -> bool:
        """The store could not save this item's judgements. True presents the item again (an interactive rater
        keeps its input and tries again); False ends the run with the error."""
        return False

    async def finished(self) -> None:
        """Called by the runner after the last item (close clients here)."""

    def settings(self) -> dict[str, Any]:
        """What is stored with the rater row; never a secret."""
        return {}
