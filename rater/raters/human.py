"""The teacher as a Rater: `rate` hands the item to a screen and waits for the teacher's decision.

No Textual here: any screen that implements `Presenter` (the terminal app, or the same app served to a browser)
shows what the runner asks and answers through `decide` and `stop`.
"""

import asyncio
from typing import ClassVar, Protocol

from rater.core.domain import ItemView, Judgement, RaterKind, Revisit
from rater.core.errors import FatalRaterError, RaterError
from rater.raters.base import Rater, StopRun


class Presenter(Protocol):
    def present(self, item: ItemView) -> None:
        """Show `item`; the teacher answers with `HumanRater.decide`."""

    def exhausted(self) -> None:
        """Nothing is left to rate: show a summary; the teacher may still go back."""

    def save_failed(self, item: ItemView, error: RaterError) -> None:
        """The item's judgements could not be saved; it is presented again next."""


class HumanRater(Rater):
    """A teacher: one item at a time, skipped items come back at the end, and going back is a `Revisit`."""

    kind: ClassVar[str] = RaterKind.human
    default_name: ClassVar[str] = "teacher"
    interactive: ClassVar[bool] = True

    def __init__(self, name: str | None = None, presenter: Presenter | None = None) -> None:
        super().__init__(name)
        self.presenter = presenter
        self._decision: asyncio.Future | None = None
        self._stopped = False

    async def rate(self, item: ItemView) -> list[Judgement] | Revisit:
        return await self._ask(lambda presenter: presenter.present(item))

    async def exhausted(self) -> Revisit | None:
        outcome = await self._ask(lambda presenter: presenter.exhausted())
        return outcome if isinstance(outcome, Revisit) else None

    def save_failed(self, item: ItemView, error: RaterError) -> bool:
        if self.presenter is not None:
            self.presenter.save_failed(item, error)
        return True

    async def _ask(self, show) -> list[Judgement] | Revisit:
        if self.presenter is None:
            raise FatalRaterError("The human rater needs a screen to show the items on.",
                                  "rate with `rater rate` or `rater eval rate`")
        if self._stopped:
            raise StopRun()
        self._decision = asyncio.get_running_loop().create_future()
        show(self.presenter)
        try:
            return await self._decision
        finally:
            self._decision = None

    @property
    def waiting(self) -> bool:
        """Whether the runner is waiting for the teacher (an item or the summary is on screen)."""
        return self._decision is not None and not self._decision.done()

    def decide(self, outcome: list[Judgement] | Revisit) -> bool:
        """The teacher's answer to what is on screen: judgements (submit), [] (skip) or Revisit() (go back).
        False when nothing is being asked (a save is still running)."""
        decision = self._decision
        if decision is None or decision.done():
            return False
        decision.set_result(outcome)
        return True

    def stop(self) -> None:
        """End the run: at once when waiting for the teacher, else after the save in progress."""
        self._stopped = True
        if self._decision is not None and not self._decision.done():
            self._decision.set_exception(StopRun())
