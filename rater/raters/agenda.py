"""What a run presents next: the items a rater has left (`Pending`), or, when teachers share the work out, the
items it claims (`Claims`); revisits and skipped items on top (`Agenda`)."""

import asyncio
import random
from collections import deque
from dataclasses import dataclass, field, replace

from sqlalchemy import Engine

from rater.core.domain import ItemView, Judgement, RaterKind
from rater.raters.base import Rater, RunStart
from rater.store.engine import session_scope
from rater.store.items import ItemFilter, count_items_with_distractors, eval_set_views, item_views, unrated_item_ids
from rater.store.ratings import (
    get_or_create_rater,
    rated_distractor_ids,
    ratings_of_item,
)
from rater.store.study import Study
from rater.store.tables import saved_id

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


@dataclass
class Pending:
    """The queue's items that still have distractors this rater has not rated; views load in batches."""

    engine: Engine
    start: RunStart
    where: ItemFilter
    ids: list[int] = field(default_factory=list)
    fixed: list[ItemView] | None = None  # an evaluation set's views, in its order

    offset: int = 0

    def __len__(self) -> int:
        return len(self.fixed) if self.fixed is not None else len(self.ids)

    async def more(self) -> list[ItemView]:
        """The next batch with something left to rate; [] at the end."""
        while self.offset < len(self):
            batch = await asyncio.to_thread(self.load, self.offset)
            self.offset += BATCH
            if batch:
                return batch
        return []

    async def skipped(self, item: ItemView) -> bool:
        return True  # an interactive rater sees it again at the end of the run

    def rated(self, item: ItemView) -> None:
        """Nothing to do: the item is not handed out."""

    async def close(self) -> None:
        """Nothing is held."""

    def load(self, offset: int) -> list[ItemView]:
        """The batch at `offset`, without distractors rated meanwhile (another process under the same name)."""
        with session_scope(self.engine) as session:
            if self.fixed is not None:
                views = self.fixed[offset:offset + BATCH]
            else:
                views = item_views(session, item_ids=self.ids[offset:offset + BATCH], where=self.where)
            return without_rated(session, self.start, views)


class Claims:
    """Items claimed one at a time, when the study shares work out with an overlap (`Study`): an item is held until
    it is rated; a skipped item is released to the other teachers and offered again later; whatever is still held
    when the run ends is released."""

    def __init__(self, engine: Engine, start: RunStart, study: Study, set_views: list[ItemView] | None) -> None:
        self.engine, self.start, self.study, self.where = engine, start, study, study.where
        self.set_views = {v.id: v for v in set_views} if set_views is not None else None
        self.held: set[int] = set()
        self.passed_over: set[int] = set()
        self.last: int | None = None  # the item claimed last: the next claim searches behind it first

    async def more(self) -> list[ItemView]:
        view = await asyncio.to_thread(self._claim)
        return [view] if view is not None else []

    def _claim(self) -> ItemView | None:
        with session_scope(self.engine) as session:
            item_id = self._next(session)
            if item_id is None and self.passed_over:  # only skipped items are left: offer them again
                self.passed_over.clear()
                item_id = self._next(session)
            if item_id is None:
                return None
            self.held.add(item_id)
            self.last = item_id
            # the claim took only an item this teacher has not rated in this scope: every distractor is to rate
            if self.set_views is not None:
                return self.set_views[item_id]
            return item_views(session, item_ids=[item_id], where=self.where)[0]

    def _next(self, session) -> int | None:
        return self.study.claim(session, rater_id=self.start.rater_id, passed_over=self.passed_over, after=self.last)

    async def skipped(self, item: ItemView) -> bool:
        self.passed_over.add(item.id)
        await self._release([item.id])
        return False

    def rated(self, item: ItemView) -> None:
        self.held.discard(item.id)  # the lease went with the ratings, in their transaction

    async def close(self) -> None:
        await self._release(list(self.held))

    async def _release(self, item_ids: list[int]) -> None:
        self.held.difference_update(item_ids)
        if item_ids:
            await asyncio.to_thread(self._release_now, item_ids)

    def _release_now(self, item_ids: list[int]) -> None:
        with session_scope(self.engine) as session:
            self.study.release(session, rater_id=self.start.rater_id, item_ids=item_ids)


def without_rated(session, start: RunStart, views: list[ItemView]) -> list[ItemView]:
    rated = rated_distractor_ids(session, rater_id=start.rater_id, eval_set_id=start.eval_set_id,
                                 distractor_ids=[d.id for v in views for d in v.distractors])
    kept = [replace(v, distractors=tuple(d for d in v.distractors if d.id not in rated)) for v in views]
    return [v for v in kept if v.distractors]


def open_run(engine: Engine, rater: Rater, queue: Queue) -> tuple[RunStart, "Pending | Claims"]:
    """Register the rater and find what it has left to rate (or, when the study shares teachers' work out with an
    overlap, where to claim it from)."""
    with session_scope(engine) as session:
        rater_id = saved_id(get_or_create_rater(session, name=rater.name, kind=rater.kind, settings=rater.settings()))
        study = Study.named(session, queue.eval_set, queue.where)
        eval_set_id = study.eval_set_id
        views = eval_set_views(session, eval_set_id=eval_set_id) if eval_set_id is not None else None
        total = len(views) if views is not None else count_items_with_distractors(session, where=queue.where)
        progress = study.progress(session) if rater.kind == RaterKind.human else None  # judges rate everything
        start = RunStart(rater_id, eval_set_id, total, 0, overlap=progress.overlap if progress else None)
        if progress is not None:
            return replace(start, pending=progress.lacking), Claims(engine, start, study, views)
        if views is not None:
            fixed = without_rated(session, start, views)[:queue.limit]
            _shuffle(fixed, queue.shuffle_seed)
            return replace(start, pending=len(fixed)), Pending(engine, start, queue.where, fixed=fixed)
        ids = unrated_item_ids(session, rater_id=rater_id, where=queue.where, limit=queue.limit)
    _shuffle(ids, queue.shuffle_seed)
    start = replace(start, pending=len(ids))
    return start, Pending(engine, start, queue.where, ids=ids)


def _shuffle(values: list, seed: int | None) -> None:
    if seed is not None:
        random.Random(seed).shuffle(values)


class Agenda:
    """What the runner presents next: an item revisited, then the pending items in order, then skipped items
    again. For interactive raters it remembers the items rated in this run, so the rater can go back to them."""

    def __init__(self, engine: Engine, start: RunStart, source: "Pending | Claims", interactive: bool) -> None:
        self.engine, self.start, self.source, self.interactive = engine, start, source, interactive
        self.front: deque[tuple[ItemView, bool]] = deque()  # (item, presented as a revisit)
        self.later: deque[ItemView] = deque()  # skipped items, presented again at the end
        self.buffer: deque[ItemView] = deque()
        self.done: list[ItemView] = []  # items rated in this run, in order (interactive raters only)
        self.cursor: int | None = None  # index into `done` while revisiting
        self.showing_revisit = False

    async def next(self) -> ItemView | None:
        self.showing_revisit = False
        if self.front:
            item, revisit = self.front.popleft()
            return await self._revisit_view(item) if revisit else self._fresh(item)
        if not self.buffer:
            self.buffer.extend(await self.source.more())
        if self.buffer:
            return self._fresh(self.buffer.popleft())
        return self._fresh(self.later.popleft()) if self.later else None

    def _fresh(self, item: ItemView) -> ItemView:
        return replace(item, previous=(), earlier=len(self.done))

    async def _revisit_view(self, item: ItemView) -> ItemView:
        self.showing_revisit = True
        saved = await asyncio.to_thread(self._saved, item.id)
        previous = tuple(saved[d.id] for d in item.distractors if d.id in saved)
        return replace(item, previous=previous, earlier=self.cursor or 0)

    def _saved(self, item_id: int) -> dict[int, Judgement]:
        with session_scope(self.engine) as session:
            return ratings_of_item(session, rater_id=self.start.rater_id, item_id=item_id,
                                   eval_set_id=self.start.eval_set_id)

    def rated(self, item: ItemView, revisited: bool) -> None:
        self.source.rated(item)
        if revisited:
            self._forward()
        elif self.interactive:
            self.done.append(item)

    async def skipped(self, item: ItemView) -> None:
        if self.showing_revisit:
            self._forward()  # a revisited item is left as it was saved
        elif await self.source.skipped(item) and self.interactive:
            self.later.append(item)

    def again(self, item: ItemView) -> None:
        """Present `item` again next (its save failed)."""
        self.front.appendleft((item, self.showing_revisit))

    def revisit(self, current: ItemView | None) -> bool:
        """Present the item rated before `current` again, `current` after it; False when there is none (then
        `current` itself comes again)."""
        revisiting = self.showing_revisit
        if (revisiting and self.cursor == 0) or (not revisiting and not self.done):
            if current is not None:
                self.front.appendleft((current, revisiting))
            return False
        if revisiting and self.cursor is not None:
            self.cursor -= 1
        else:
            if current is not None:
                self.front.appendleft((current, False))
            self.cursor = len(self.done) - 1
        self.front.appendleft((self.done[self.cursor], True))
        return True

    def _forward(self) -> None:
        if self.cursor is None:
            return
        self.cursor += 1
        if self.cursor < len(self.done):
            self.front.appendleft((self.done[self.cursor], True))
        else:
            self.cursor = None
