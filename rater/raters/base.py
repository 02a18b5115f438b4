"""The Rater interface every rater implements: teachers, LLM judges and rule checks alike."""

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from rater.core.domain import ItemView, Judgement


class Rater(ABC):
    """Rates one item's distractors at a time.

    Capability flags tell the runner how to drive it: `max_concurrency` items may be in flight at once.
    """

    kind: ClassVar[str]
    default_name: ClassVar[str]
    max_concurrency: ClassVar[int] = 1

    def __init__(self, name: str | None = None) -> None:
        self.name = name or self.default_name

    @abstractmethod
    async def rate(self, item: ItemView) -> list[Judgement]:
        """One judgement per distractor of `item`, or an empty list to leave the item unrated (skipped)."""

    def started(self, rater_id: int) -> None:
        """Called by the runner before the first item, with the rater's database id."""

    async def finished(self) -> None:
        """Called by the runner after the last item (close clients here)."""

    def settings(self) -> dict[str, Any]:
        """What is stored with the rater row; never a secret."""
        return {}
