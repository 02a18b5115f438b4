"""What a run presents next: the items a rater has left (`Pending`), or, when teachers share the work out, the
items it claims (`Claims`); revisits, history, skipped items and drafts on top (`Agenda`)."""

import asyncio
import random
from collections import deque
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import Iterable

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col

from rater.core.domain import ItemView, Judgement, RaterKind
from rater.raters.base import Rater, RunStart
from rater.store.drafts import item_and_draft, load_drafts
from rater.store.engine import in_thread, read_scope, session_scope
from rater.store.items import (
    ItemFilter,
    count_items_with_distractors,
    eval_set_views,
    item_id_span,
    item_views,
    unrated_item_ids,
)
from rater.store.ratings import get_or_create_rater, rated_distractor_ids, rated_items_newest_last, ratings_of_item
from rater.store.study import Study, mark_uncertain_order
from rater.store.tables import Item, saved_id

BATCH = 256  # items loaded from the store at a time


@dataclass(frozen=True)
class Queue:
    """What to rate: a filter over the store, or the fixed order of an evaluation set (which collects judgements
    of its own); `shuffle_seed` gives the rater an order of its own. Whether the work is shared out among teachers
    is the study's rule (`Study`), read when the run opens."""

    where: ItemFilter = ItemFilter()
    eval_set: str | None = None
    limit: int | None = None
    shuffle_seed: int | None = None
    uncertain: bool = False  # the items the judges are least sure about first (Item.uncertainty), unrated by any last


@dataclass
class Pending:
    """The queue's items that still have distractors this rater has not rated; views load in batches."""

    engine: Engine
    start: RunStart
    where: ItemFilter
    ids: list[int] = field(default_factory=list)
    fixed: list[ItemView] | None = None  # an evaluation set's views, in its order
    uncertain: bool = False  # the ids come in the judges' uncertainty order

    offset: int = 0

    def __len__(self) -> int:
        return len(self.fixed) if self.fixed is not None else len(self.ids)

    async def more(self, besides: int | None = None) -> list[ItemView]:
        """The next batch with something left to rate; [] at the end. (`besides`, the item being saved, cannot come
        again: the batches only go forward.)"""
        while self.offset < len(self):
            batch = await in_thread(self.load, self.offset)
            self.offset += BATCH
            if batch:
                return batch
        return []

    async def skipped(self, item: ItemView) -> str:
        return "later"  # an interactive rater sees it again at the end of the run

    def rated(self, item: ItemView) -> None:
        """Nothing to do: the item is not handed out."""

    async def renew(self, item: ItemView) -> None:
        """Nothing is held."""

    def waiting(self) -> int:
        return 0

    async def close(self) -> None:
        """Nothing is held."""

    def load(self, offset: int) -> list[ItemView]:
        """The batch at `offset`, without distractors rated meanwhile (another process under the same name)."""
        with session_scope(self.engine) as session:
            if self.fixed is not None:
                views = self.fixed[offset:offset + BATCH]
            else:
                views = item_views(session, item_ids=self.ids[offset:offset + BATCH], where=self.where)
            if self.uncertain and views:  # teachers' labels from here on are not a random sample
                mark_uncertain_order(session)
            return without_rated(session, self.start, views)


class Claims:
    """Items claimed one at a time, when the study shares work out with an overlap (`Study`): an item is held until
    it is rated (the hold renewed while it is on screen); a skipped item is released to the other teachers and
    offered again once, when nothing else is left; whatever is still held when the run ends is released."""

    def __init__(self, engine: Engine, start: RunStart, study: Study, set_views: list[ItemView] | None,
                 uncertain: bool = False) -> None:
        self.engine, self.start, self.study, self.where = engine, start, study, study.where
        self.uncertain = uncertain and set_views is None  # an evaluation set keeps its own order
        self.marked = False  # the study knows a teacher was shown an item in uncertainty order
        self.set_views = {v.id: v for v in set_views} if set_views is not None else None
        self.held: set[int] = set()
        self.passed_over: set[int] = set()  # skipped: offered again when nothing else is left
        self.offered_again: set[int] = set()  # skipped, then offered again
        self.skipped_twice: set[int] = set()  # skipped again after that: not offered a third time
        self.last: int | None = None  # the item claimed last: the next claim searches behind it first
        self.drafts: dict[int, tuple[Judgement, ...]] = {}  # a claimed item's drafts, read in the claim's transaction

    async def more(self, besides: int | None = None) -> list[ItemView]:
        """The next item claimed; [] when none is left. `besides`: an item this teacher holds and is saving now
        (the claim runs beside the save), which the claim must not take again."""
        view = await in_thread(self._claim, {besides} if besides is not None else set())
        return [view] if view is not None else []

    def _claim(self, besides: set[int]) -> ItemView | None:
        """The claim commits on its own, so the item's row lock (PostgreSQL) is held for its four statements only, not
        while the item is read: a save of that item (another teacher's) waits on it, and with it every save queued
        behind in the writer. The item is then read in a second transaction."""
        with session_scope(self.engine) as session:
            item_id = self._next(session, self.passed_over | self.skipped_twice | besides)
            if item_id is None and self.passed_over:  # only skipped items are left: offer them once more
                self.offered_again |= self.passed_over
                self.passed_over = set()
                item_id = self._next(session, self.skipped_twice | besides)
            if item_id is None:
                return None
            if self.uncertain and not self.marked:  # teachers' labels from here on are not a random sample
                mark_uncertain_order(session)
        self.held.add(item_id)  # held from the commit on (released when the run ends, if the read below fails)
        self.last = item_id
        self.marked = self.marked or self.uncertain
        with read_scope(self.engine) as session:
            # the claim took only an item this teacher has not rated in this scope: every distractor is to rate
            if self.set_views is not None:
                self.drafts[item_id] = drafts_of(session, self.start, item_id)
                return self.set_views[item_id]
            view, marks = item_and_draft(session, item_id=item_id, rater_id=self.start.rater_id,
                                         eval_set_id=self.start.eval_set_id, where=self.where)
        if view is None:
            raise LookupError(f"item {item_id} was claimed but has no distractor to rate")
        self.drafts[item_id] = tuple(Judgement(d, ticked, reason=reason) for d, (ticked, reason) in marks.items())
        return view

    def _next(self, session, passed_over: Iterable[int]) -> int | None:
        if self.uncertain:  # always from the most uncertain item still free
            return self.study.claim(session, rater_id=self.start.rater_id, passed_over=passed_over, uncertain=True)
        if self.last is None and self.set_views is None:
            self.last = self._starting_point(session)
        return self.study.claim(session, rater_id=self.start.rater_id, passed_over=passed_over, after=self.last)

    def _starting_point(self, session) -> int | None:
        """Where in the queue this teacher's first claim looks (preference rating): a place of their own, spread
        over the items by the teacher's id, so teachers who start together do not all queue for the same first
        items' locks. The claim goes on behind it and comes round to the items before it, so every item is
        reachable; which teacher rates which item is no part of the protocol (the option order is)."""
        span = item_id_span(session, where=self.where)
        if span is None:
            return None
        low, high = span
        return low - 1 + (self.start.rater_id * 2654435761) % (high - low + 1)

    async def skipped(self, item: ItemView) -> str:
        """A skipped item goes back to the other teachers at once; this teacher is offered it once more at the
        end ("again"); skipped then too, it is left ("left")."""
        twice = item.id in self.offered_again
        (self.skipped_twice if twice else self.passed_over).add(item.id)
        await self._release([item.id])
        return "left" if twice else "again"

    def rated(self, item: ItemView) -> None:
        self.held.discard(item.id)  # the lease went with the ratings, in their transaction

    async def renew(self, item: ItemView) -> None:
        if item.id in self.held:
            await in_thread(self._renew_now, item.id)

    def _renew_now(self, item_id: int) -> None:
        with session_scope(self.engine) as session:
            self.study.renew(session, rater_id=self.start.rater_id, item_id=item_id)

    def waiting(self) -> int:
        """Skipped items that will be offered once more."""
        return len(self.passed_over)

    async def close(self) -> None:
        await self._release(list(self.held))

    async def give_back(self, item_ids: list[int]) -> None:
        """Release items claimed but not shown (the claim ahead of a save that failed)."""
        await self._release(item_ids)

    async def _release(self, item_ids: list[int]) -> None:
        self.held.difference_update(item_ids)
        if item_ids:
            await in_thread(self._release_now, item_ids)

    def _release_now(self, item_ids: list[int]) -> None:
        with session_scope(self.engine) as session:
            self.study.release(session, rater_id=self.start.rater_id, item_ids=item_ids)


def drafts_of(session, start: RunStart, item_id: int) -> tuple[Judgement, ...]:
    """The ticks and reasons this rater left on the item without saving (kept across restarts)."""
    marks = load_drafts(session, rater_id=start.rater_id, eval_set_id=start.eval_set_id,
                        item_ids=[item_id]).get(item_id, {})
    return tuple(Judgement(d, ticked, reason=reason) for d, (ticked, reason) in marks.items())


def without_rated(session, start: RunStart, views: list[ItemView]) -> list[ItemView]:
    rated = rated_distractor_ids(session, rater_id=start.rater_id, eval_set_id=start.eval_set_id,
                                 distractor_ids=[d.id for v in views for d in v.distractors])
    kept = [replace(v, distractors=tuple(d for d in v.distractors if d.id not in rated)) for v in views]
    return [v for v in kept if v.distractors]


@dataclass(frozen=True)
class Opened:
    """How a run opened: its start, where its items come from, and an evaluation set's views (for revisits)."""

    start: RunStart
    source: "Pending | Claims"
    set_views: dict[int, ItemView] | None


def open_run(engine: Engine, rater: Rater, queue: Queue) -> Opened:
    """Register the rater and find what it has left to rate (or, when the study shares teachers' work out with an
    overlap, where to claim it from)."""
    with session_scope(engine) as session:
        rater_id = saved_id(get_or_create_rater(session, name=rater.name, kind=rater.kind, settings=rater.settings()))
        study = Study.named(session, queue.eval_set, queue.where)
        eval_set_id = study.eval_set_id
        views = eval_set_views(session, eval_set_id=eval_set_id) if eval_set_id is not None else None
        set_views = {v.id: v for v in views} if views is not None else None
        total = len(views) if views is not None else count_items_with_distractors(session, where=queue.where)
        progress = study.progress(session) if rater.kind == RaterKind.human else None  # judges rate everything
        start = RunStart(rater_id, eval_set_id, total, 0, overlap=progress.overlap if progress else None)
        if progress is not None:
            return Opened(replace(start, pending=progress.lacking), Claims(engine, start, study, views,
                                                                                 uncertain=queue.uncertain), set_views)
        if views is not None:
            fixed = without_rated(session, start, views)[:queue.limit]
            _shuffle(fixed, queue.shuffle_seed)
            start = replace(start, pending=len(fixed))
            return Opened(start, Pending(engine, start, queue.where, fixed=fixed), set_views)
        ids = unrated_item_ids(session, rater_id=rater_id, where=queue.where,
                               limit=None if queue.uncertain else queue.limit)
        if queue.uncertain:
            unsure = dict(session.execute(select(col(Item.id), col(Item.uncertainty))
                                          .where(col(Item.uncertainty).is_not(None))).all())
            ids.sort(key=lambda i: -unsure.get(i, -1.0))  # stable: the stored order among equals, unrated last
            ids = ids[:queue.limit]
    _shuffle(ids, queue.shuffle_seed)
    start = replace(start, pending=len(ids))
    return Opened(start, Pending(engine, start, queue.where, ids=ids, uncertain=queue.uncertain), set_views)


def _shuffle(values: list, seed: int | None) -> None:
    if seed is not None:
        random.Random(seed).shuffle(values)


def fair_order(item: ItemView, rater_name: str) -> ItemView:
    """The item's options in an order of this rater's own, the same each time the item comes back (seeded by
    rater and item), so no option's position, and so no source, is the same for every teacher."""
    options = sorted(item.distractors, key=lambda d: d.id)  # from one canonical order, whatever order it came in
    random.Random(f"{rater_name}\x1f{item.id}").shuffle(options)
    return replace(item, distractors=tuple(options))


class Agenda:
    """What the runner presents next: an item revisited or opened from the rater's history, then the pending items
    in order, then skipped items once more. For a teacher it also keeps the history (every item rated in this
    scope, across sessions, oldest first), restores drafts, and shows each item's options in the teacher's own
    order (preference rating; a blind evaluation set keeps its own)."""

    def __init__(self, engine: Engine, start: RunStart, opened: Opened, rater: Rater) -> None:
        self.engine, self.start, self.source = engine, start, opened.source
        self.set_views = opened.set_views
        self.rater_name, self.interactive = rater.name, rater.interactive
        self.own_order = rater.kind == RaterKind.human and start.eval_set_id is None
        self.front: deque[tuple[ItemView | int, bool]] = deque()  # (item, or an item id to load; as a revisit)
        self.later: deque[ItemView] = deque()  # skipped items, presented once more at the end
        self.final_round: set[int] = set()
        self.left: list[ItemView] = []  # skipped again at the end: listed when nothing else is left
        self.buffer: deque[ItemView] = deque()
        self.history: list[int] | None = None  # item ids rated in this scope, oldest first (loaded when needed)
        self.cursor: int | None = None  # index into `history` while revisiting
        self.showing_revisit = False
        self.notes: tuple[str, ...] = ()  # said with the next item shown (an item opened from history was deleted)
        self.ahead: asyncio.Task | None = None  # the next item's claim, running beside a save (`claim_ahead`)
        self.retry: deque[tuple[ItemView, bool]] = deque()  # (item whose save failed, as a revisit): shown again first

    async def next(self) -> ItemView | None:
        self.showing_revisit = False
        if self.retry:  # as it was shown: nothing is read from the store, which may be why the save failed
            item, self.showing_revisit = self.retry.popleft()
            return replace(item, notes=())
        while self.front:
            entry, revisit = self.front.popleft()
            if revisit:
                view = await self._revisit_view(entry.id if isinstance(entry, ItemView) else entry)
                if view is not None:
                    return view
            else:
                assert isinstance(entry, ItemView)
                return await self._fresh(entry)
        if not self.buffer and self.ahead is not None:
            ahead, self.ahead = self.ahead, None
            with suppress(SQLAlchemyError):  # (the database was away for a moment: the claim below tries again)
                self.buffer.extend(await ahead)
        if not self.buffer:
            self.buffer.extend(await self.source.more())
        if self.buffer:
            return await self._fresh(self.buffer.popleft())
        if self.later:
            item = self.later.popleft()
            self.final_round.add(item.id)
            return await self._fresh(item)
        return None

    async def _fresh(self, item: ItemView) -> ItemView:
        if not self.interactive:
            return item
        history = await self._history()
        drafts = self.source.drafts.pop(item.id, None) if isinstance(self.source, Claims) else None
        if drafts is None:
            drafts = await in_thread(self._drafts, item.id)
        shown = fair_order(item, self.rater_name) if self.own_order else item
        notes, self.notes = self.notes, ()
        return replace(shown, earlier=len(history), draft=drafts, skipped=self.skipped_count(), notes=notes)

    def skipped_count(self) -> int:
        return len(self.later) + len(self.left) + self.source.waiting()

    async def _history(self) -> list[int]:
        if self.history is None:
            self.history = await in_thread(self._load_history)
        return self.history

    def _load_history(self) -> list[int]:
        with session_scope(self.engine) as session:
            return rated_items_newest_last(session, rater_id=self.start.rater_id, eval_set_id=self.start.eval_set_id)

    def _drafts(self, item_id: int) -> tuple[Judgement, ...]:
        with session_scope(self.engine) as session:
            return drafts_of(session, self.start, item_id)

    async def _revisit_view(self, item_id: int) -> ItemView | None:
        """The item as it is now, with this rater's saved judgements; None (and a note for the next item) when it
        is gone."""
        view, saved, drafts = await in_thread(self._load_revisit, item_id)
        history = await self._history()
        if view is None:
            self.notes = (*self.notes, "The item you opened is gone: it was deleted since you saw it.")
            return None
        if not saved:  # an item skipped (twice) and opened from the list of skipped items: not rated yet
            return await self._fresh(view)
        self.showing_revisit = True
        previous = tuple(saved[d.id] for d in view.distractors if d.id in saved)
        removed = len(set(saved) - {d.id for d in view.distractors})
        notes = (*self.notes, *([f"{removed} of the distractors you rated were removed since."] if removed else []))
        if view.distractors and len(previous) < len(view.distractors):
            notes = (*notes, "New distractors were added since you rated this item: they are marked new.")
        self.notes = ()
        shown = fair_order(view, self.rater_name) if self.own_order else view
        earlier = history.index(item_id) if item_id in history else len(history)
        return replace(shown, previous=previous, earlier=earlier, draft=drafts, skipped=self.skipped_count(),
                       notes=notes)

    def _load_revisit(self, item_id: int) -> tuple[ItemView | None, dict[int, Judgement], tuple[Judgement, ...]]:
        with session_scope(self.engine) as session:
            if self.set_views is not None:
                view = self.set_views.get(item_id)
            else:
                views = item_views(session, item_ids=[item_id], where=self.source.where)
                view = views[0] if views else None
            saved = ratings_of_item(session, rater_id=self.start.rater_id, item_id=item_id,
                                    eval_set_id=self.start.eval_set_id)
        return view, saved, self._drafts(item_id)

    def rated(self, item: ItemView, revisited: bool) -> None:
        self.source.rated(item)
        if self.history is not None and item.id not in self.history:
            self.history.append(item.id)
        self.left = [i for i in self.left if i.id != item.id]
        if revisited:
            self._forward()

    async def skipped(self, item: ItemView) -> None:
        if self.showing_revisit:
            self._forward()  # a revisited item is left as it was saved
            return
        outcome = await self.source.skipped(item)
        if not self.interactive:
            return
        if outcome == "left" or (outcome == "later" and item.id in self.final_round):
            self.left.append(item)  # skipped twice: listed at the end, where it can be opened
        elif outcome == "later":
            self.later.append(item)

    def claim_ahead(self, saving: ItemView) -> None:
        """While a teacher's answer to `saving` (a new item, not a revisit) is being saved, look for the item after
        it, so the teacher waits for the longer of the save and the claim, not for both one after the other. Only
        when the queue's next item is that claim's (nothing revisited or opened waits in front of it)."""
        if self.interactive and not self.front and not self.buffer and self.ahead is None:
            self.ahead = asyncio.create_task(self.source.more(besides=saving.id))

    async def give_back_ahead(self) -> None:
        """The save beside which the next item was claimed failed: that item goes back to the other teachers (the
        failed item is shown again first, and may be long on screen); a batch of one's own items is kept."""
        ahead, self.ahead = self.ahead, None
        if ahead is None:
            return
        try:
            views = await ahead
        except SQLAlchemyError:
            return
        if isinstance(self.source, Claims):
            with suppress(SQLAlchemyError):  # (else its hold runs out)
                await self.source.give_back([v.id for v in views])
        else:
            self.buffer.extend(views)

    async def settle(self) -> None:
        """At the run's end: wait for a claim still running ahead, so what it took is among the items released."""
        if self.ahead is not None:
            with suppress(Exception):
                await self.ahead

    def left_over(self) -> list[ItemView]:
        """Items skipped and skipped again (listed when nothing else is left), and those a claim will not offer."""
        return list(self.left)

    def again(self, item: ItemView) -> None:
        """Present `item` again next (its save failed, or another window saved it first), as it was shown; the
        screen keeps the teacher's answer."""
        self.retry.append((item, self.showing_revisit))

    async def revisit(self, current: ItemView | None, item_id: int | None = None) -> bool:
        """Present the item rated before `current` again (or, with `item_id`, that item of the rater's history),
        `current` after it; False when there is none (then `current` itself comes again)."""
        history = await self._history()
        revisiting = self.showing_revisit
        if item_id is not None:  # opened from the history (or the list of skipped items): then back to `current`
            if item_id not in history and item_id not in {i.id for i in self.left}:
                # only one's own rated or skipped items open this way: any other goes by the queue (and its claim)
                self.notes = (*self.notes, "Only an item you rated or skipped can be opened from the history.")
                if current is not None:
                    self.front.appendleft((current, revisiting))
                return False
            if current is not None:
                self.front.appendleft((current, revisiting))
            self.cursor = None
            self.front.appendleft((item_id, True))
            return True
        at = self.cursor if revisiting and self.cursor is not None else len(history)
        if current is not None and not revisiting and current.id in history:
            at = history.index(current.id)  # (an item already rated, shown again after a failed save)
        if at == 0:
            if current is not None:
                self.front.appendleft((current, revisiting))
            return False
        if current is not None and not revisiting:
            self.front.appendleft((current, False))
        self.cursor = at - 1
        self.front.appendleft((history[self.cursor], True))
        return True

    def _forward(self) -> None:
        """After a revisited item is saved or left: the one after it in the history, until the newest."""
        history = self.history or []
        if self.cursor is None:
            return
        self.cursor += 1
        if self.cursor < len(history):
            self.front.appendleft((history[self.cursor], True))
        else:
            self.cursor = None
