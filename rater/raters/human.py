"""The teacher as a Rater: `rate` hands the item to a screen and waits for the teacher's decision.

No Textual here: any screen that implements `Presenter` (the terminal app, or the web page) shows what the runner
asks and answers through `decide` and `stop`; both keep drafts through `draft`. So claims, holds, overlap,
revisits, history, skips, drafts, option order and saves are the same code for both.
"""

import asyncio
from typing import Any, ClassVar, Protocol, Sequence

from rater.core.domain import ItemView, Judgement, LookAgain, RaterKind, Revisit
from rater.core.errors import FatalRaterError, RaterError
from rater.raters.base import Rater, RunStart, StopRun


class Presenter(Protocol):
    def present(self, item: ItemView) -> None:
        """Show `item`; the teacher answers with `HumanRater.decide`."""

    def exhausted(self, left: Sequence[ItemView]) -> None:
        """Nothing is left to rate but `left` (items skipped twice): show a summary; the teacher may still go back
        or open one."""

    def save_failed(self, item: ItemView, error: RaterError) -> None:
        """The item's judgements could not be saved (StaleSave: another window saved it first); it is presented
        again next."""

    def beyond_k(self, item: ItemView) -> None:
        """Tell the teacher the save came beyond K (kept, flagged)."""


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
        self.run: RunStart | None = None

    def started(self, run: RunStart) -> None:
        self.run = run

    async def rate(self, item: ItemView) -> list[Judgement] | Revisit:
        while isinstance(outcome := await self._ask(lambda presenter: presenter.present(item)), LookAgain):
            pass  # (only an answer to "nothing is left": never given while an item is up)
        return outcome

    async def exhausted(self, left: Sequence[ItemView] = ()) -> Revisit | LookAgain | None:
        outcome = await self._ask(lambda presenter: presenter.exhausted(left))
        return outcome if isinstance(outcome, (Revisit, LookAgain)) else None

    def save_failed(self, item: ItemView, error: RaterError) -> bool:
        if self.presenter is not None:
            self.presenter.save_failed(item, error)
        return True

    def beyond_k(self, item: ItemView) -> None:
        if self.presenter is not None:
            self.presenter.beyond_k(item)

    def draft(self, item: ItemView, marks: dict[int, tuple[bool, str | None]]) -> "asyncio.Future[Any] | None":
        """Keep the teacher's unsaved ticks and reasons of `item` (empty: none), so nothing is lost when the screen
        goes away; None when no run is going."""
        if self.run is None or self.run.records is None:
            return None
        return self.run.records.draft(item.id, marks)

    async def _ask(self, show) -> list[Judgement] | Revisit | LookAgain:
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

    def decide(self, outcome: list[Judgement] | Revisit | LookAgain) -> bool:
        """The teacher's answer to what is on screen: judgements (submit), [] (skip), Revisit() (go back) or, with
        nothing left, LookAgain().
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
