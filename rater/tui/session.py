"""The rating session behind the screen: queue, navigation (next, back, skip) and saving, with no Textual."""

import random
from collections import deque
from dataclasses import dataclass

from sqlalchemy import Engine, case, func, select

from rater.store.engine import session_scope
from rater.core.domain import ItemView, Judgement
from rater.store.tables import Rating
from rater.raters.runner import Queue, pending_items
from rater.store.items import count_items_without_distractors, eval_set_views, item_views
from rater.store.ratings import get_or_create_rater, ratings_of_item, save_judgements

MAX_OPTIONS = 9  # number keys 1-9


@dataclass
class Shown:
    """The item on screen with the ticks and reasons the rater has given so far."""

    item: ItemView
    ticked: list[bool]
    reasons: list[str | None]
    reviewing: bool = False  # an item submitted earlier, opened again with backspace


@dataclass
class Tally:
    items: int = 0
    judgements: int = 0
    accepted: int = 0

    @property
    def rate(self) -> float:
        return self.accepted / self.judgements if self.judgements else 0.0


class RatingSession:
    """Everything the rating screen needs from the store; the app owns exactly one."""

    def __init__(self, engine: Engine, *, rater_name: str, queue: Queue, shuffle_seed: int | None = None) -> None:
        self.engine = engine
        self.queue_spec = queue
        with session_scope(engine) as session:
            self.rater_id = get_or_create_rater(session, name=rater_name, kind="human").id
        self.rater_name = rater_name
        self.fixed: dict[int, ItemView] = {}
        self.pending: deque[int] = deque(self._pending_ids(shuffle_seed))
        self.done: list[int] = []
        self.position: int | None = None  # index into `done` while reviewing
        self.total = self.rated_before + len(self.pending)
        self.tally = Tally()
        self.shown: Shown | None = None
        self.empty_skipped = 0
        if not queue.eval_set:
            with session_scope(engine) as session:
                self.empty_skipped = count_items_without_distractors(session, where=queue.where)

    def _pending_ids(self, shuffle_seed: int | None) -> list[int]:
        with session_scope(self.engine) as session:
            self.rated_before = self._rated_items(session)
            self.accepted_before, self.judged_before = self._acceptance_before(session)
        if self.queue_spec.eval_set:
            with session_scope(self.engine) as session:
                self.fixed = {v.id: v for v in eval_set_views(session, name=self.queue_spec.eval_set)}
        pending = pending_items(self.engine, rater_id=self.rater_id, queue=self.queue_spec)
        ids = [v.id for v in pending.fixed] if pending.fixed is not None else list(pending.ids)
        if shuffle_seed is not None:
            random.Random(shuffle_seed).shuffle(ids)
        return ids

    def _acceptance_before(self, session) -> tuple[int, int]:
        accepted, judged = session.execute(select(func.coalesce(func.sum(case((Rating.accepted, 1), else_=0)), 0),
                                                  func.count()).where(Rating.rater_id == self.rater_id)).one()
        return int(accepted), int(judged)

    @property
    def acceptance(self) -> float | None:
        """This rater's share of accepted distractors over everything rated, before and in this session."""
        judged = self.judged_before + self.tally.judgements
        return (self.accepted_before + self.tally.accepted) / judged if judged else None

    def _rated_items(self, session) -> int:
        query = select(func.count(func.distinct(Rating.item_id))).where(Rating.rater_id == self.rater_id)
        if self.queue_spec.eval_set:
            return 0 if not self.fixed else session.execute(query.where(Rating.item_id.in_(list(self.fixed)))).scalar_one()
        return session.execute(query).scalar_one()

    # navigation --------------------------------------------------------------------------------------------

    @property
    def progress(self) -> int:
        return self.rated_before + len(self.done)

    def advance(self) -> Shown | None:
        """Show the next item: the next reviewed one, else the first pending one; None when all are rated."""
        if self.position is not None:
            self.position += 1
            if self.position < len(self.done):
                return self._show(self.done[self.position], reviewing=True)
            self.position = None
        while self.pending:
            shown = self._show(self.pending.popleft())
            if shown.item.distractors:
                return shown
            self.empty_skipped += 1  # nothing to rate: noted, not shown
        self.shown = None
        return None

    def back(self) -> Shown | None:
        """Open the previously submitted item again, with its saved ticks; None when there is none."""
        if self.position is None:
            if not self.done:
                return None
            if self.shown is not None:
                self.pending.appendleft(self.shown.item.id)
            self.position = len(self.done) - 1
        elif self.position == 0:
            return None
        else:
            self.position -= 1
        return self._show(self.done[self.position], reviewing=True)

    def skip(self) -> Shown | None:
        """Leave the current item unrated; it comes back at the end of the queue."""
        if self.shown is not None and self.position is None:
            self.pending.append(self.shown.item.id)
        return self.advance()

    def _show(self, item_id: int, reviewing: bool = False) -> Shown:
        with session_scope(self.engine) as session:
            if item_id in self.fixed:
                view = self.fixed[item_id]
            else:
                view = item_views(session, item_ids=[item_id], where=self.queue_spec.where)[0]
            saved = ratings_of_item(session, rater_id=self.rater_id, item_id=item_id)
        distractors = view.distractors[:MAX_OPTIONS]
        view = ItemView(view.id, view.context, view.question, view.answer, distractors)
        ticked = [bool(saved[d.id].accepted) if d.id in saved else False for d in distractors]
        reasons = [saved[d.id].reason if d.id in saved else None for d in distractors]
        self.shown = Shown(view, ticked, reasons, reviewing)
        return self.shown

    # rating ------------------------------------------------------------------------------------------------

    def toggle(self, index: int) -> None:
        if self.shown and 0 <= index < len(self.shown.ticked):
            self.shown.ticked[index] = not self.shown.ticked[index]
            if self.shown.ticked[index]:
                self.shown.reasons[index] = None  # an accepted distractor has no rejection reason

    def set_reason(self, index: int, reason: str | None) -> None:
        if self.shown and 0 <= index < len(self.shown.reasons):
            self.shown.reasons[index] = reason
            if reason:
                self.shown.ticked[index] = False

    def submit(self) -> None:
        """Save the shown item's judgements in one transaction; raises the store's error and keeps the ticks."""
        shown = self.shown
        judgements = [Judgement(d.id, ticked, reason=reason)
                      for d, ticked, reason in zip(shown.item.distractors, shown.ticked, shown.reasons)]
        with session_scope(self.engine) as session:
            save_judgements(session, rater_id=self.rater_id, item_id=shown.item.id, judgements=judgements)
        if not shown.reviewing:
            self.done.append(shown.item.id)
            self.tally.items += 1
            self.tally.judgements += len(judgements)
            self.tally.accepted += sum(shown.ticked)
