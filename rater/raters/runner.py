"""The one runner: drives any Rater (teacher, LLM judge, rule checks) over a queue of items and saves each item's
judgements as soon as they exist. Every store call runs in a worker thread (reads) or the run's writer thread
(writes), so the event loop (a rating screen, or requests in flight) never waits on the database."""

import asyncio
import random
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from rater.core.domain import ItemView, Judgement, Revisit
from rater.core.errors import FatalRaterError, RaterError, StoreError
from rater.raters.base import Rater, RunStart, StopRun
from rater.store.engine import session_scope
from rater.store.items import ItemFilter, count_items_with_distractors, eval_set_views, item_views, unrated_item_ids
from rater.store.leases import claim_next_item, overlap_progress, release_leases
from rater.store.ratings import (
    eval_set_id_of,
    get_or_create_rater,
    rated_distractor_ids,
    ratings_of_item,
)
from rater.store.writer import Ratings, StoreWriter

BATCH = 256  # items loaded from the store at a time
BACKLOG = 512  # items of a non-interactive rater waiting for the writer before the runner waits as well


@dataclass
class RunSummary:
    items: int = 0
    judgements: int = 0
    accepted: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)
    stopped: bool = False  # the rater ended the run early

    @property
    def accepted_rate(self) -> float:
        return self.accepted / self.judgements if self.judgements else 0.0


@dataclass(frozen=True)
class Queue:
    """What to rate: a filter over the store, or the fixed order of an evaluation set (which collects judgements
    of its own); `shuffle_seed` gives the rater an order of its own; `overlap` shares the work out."""

    where: ItemFilter = ItemFilter()
    eval_set: str | None = None
    limit: int | None = None
    shuffle_seed: int | None = None
    overlap: int | None = None  # work shared out: items are claimed until this many teachers have rated each


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
    """Items claimed one at a time, when the study shares work out with an overlap (rater/store/leases.py): an
    item is held until it is rated; a skipped item is released to the other teachers and offered again later;
    whatever is still held when the run ends is released."""

    def __init__(self, engine: Engine, start: RunStart, where: ItemFilter, set_views: list[ItemView] | None) -> None:
        self.engine, self.start, self.where = engine, start, where
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
        return claim_next_item(session, rater_id=self.start.rater_id, eval_set_id=self.start.eval_set_id,
                               where=self.where, overlap=self.start.overlap, passed_over=self.passed_over,
                               after=self.last)

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
            release_leases(session, rater_id=self.start.rater_id, item_ids=item_ids, eval_set_id=self.start.eval_set_id)


def without_rated(session, start: RunStart, views: list[ItemView]) -> list[ItemView]:
    rated = rated_distractor_ids(session, rater_id=start.rater_id, eval_set_id=start.eval_set_id,
                                 distractor_ids=[d.id for v in views for d in v.distractors])
    kept = [replace(v, distractors=tuple(d for d in v.distractors if d.id not in rated)) for v in views]
    return [v for v in kept if v.distractors]


def open_run(engine: Engine, rater: Rater, queue: Queue) -> tuple[RunStart, "Pending | Claims"]:
    """Register the rater and find what it has left to rate (or, with an overlap, where to claim it from)."""
    with session_scope(engine) as session:
        rater_id = get_or_create_rater(session, name=rater.name, kind=rater.kind, settings=rater.settings()).id
        eval_set_id = eval_set_id_of(session, queue.eval_set)
        views = eval_set_views(session, eval_set_id=eval_set_id) if eval_set_id is not None else None
        total = len(views) if views is not None else count_items_with_distractors(session, where=queue.where)
        start = RunStart(rater_id, eval_set_id, total, 0, overlap=queue.overlap)
        if queue.overlap is not None:
            progress = overlap_progress(session, eval_set_id=eval_set_id, where=queue.where, overlap=queue.overlap)
            return replace(start, pending=progress.lacking), Claims(engine, start, queue.where, views)
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
        return replace(item, previous=previous, earlier=self.cursor)

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
        if revisiting:
            self.cursor -= 1
        else:
            if current is not None:
                self.front.appendleft((current, False))
            self.cursor = len(self.done) - 1
        self.front.appendleft((self.done[self.cursor], True))
        return True

    def _forward(self) -> None:
        self.cursor += 1
        if self.cursor < len(self.done):
            self.front.appendleft((self.done[self.cursor], True))
        else:
            self.cursor = None


def _ratings(start: RunStart, item: ItemView, judgements: list[Judgement]) -> Ratings:
    known = {d.id for d in item.distractors}
    unknown = [j.distractor_id for j in judgements if j.distractor_id not in known]
    if unknown:
        raise RaterError(f"The rater returned judgements for distractors {unknown} not shown with item {item.id}.",
                         "this is a bug in the rater plugin")
    return Ratings(start.rater_id, start.eval_set_id, item.id, judgements, release_lease=start.overlap is not None)


async def run_rater(rater: Rater, engine: Engine, queue: Queue = Queue(),
                    on_item: Callable[[ItemView, list[Judgement]], None] | None = None,
                    on_start: Callable[[RunStart], None] | None = None,
                    on_failed: Callable[[ItemView, RaterError], None] | None = None) -> RunSummary:
    """Rate every pending item of `queue`; each item's judgements are committed as soon as they exist."""
    start, source = await asyncio.to_thread(open_run, engine, rater, queue)
    start = replace(start, writer=StoreWriter(engine))
    source.start = start
    rater.started(start)
    if on_start:
        on_start(start)
    agenda = Agenda(engine, start, source, rater.interactive)
    summary = RunSummary()
    slots = asyncio.Semaphore(max(1, rater.max_concurrency))
    # interactive raters see one item at a time; others get items started ahead of the ones in flight
    window = 1 if rater.interactive else 2 * max(1, rater.max_concurrency) + 2

    async def rate_one(item: ItemView, revisited: bool) -> None:
        async with slots:
            try:
                outcome = await rater.rate(item)
            except (FatalRaterError, StopRun):
                raise
            except RaterError as exc:
                summary.failures.append(f"item {item.id}: {exc.message}")
                if on_failed:
                    on_failed(item, exc)
                return
        if isinstance(outcome, Revisit):
            if not rater.interactive:
                raise RaterError(f"The rater {rater.name!r} asked to revisit an item but is not interactive.",
                                 "this is a bug in the rater plugin")
            agenda.revisit(item)
        elif not outcome:
            summary.skipped += 1
            await agenda.skipped(item)
        elif rater.interactive:
            await save(item, outcome, revisited)  # the next item waits: a failed save is presented again first
        else:  # the slot is free at once; the write goes on in the writer thread (a locked database stalls nothing)
            saving.add(asyncio.create_task(save(item, outcome, revisited)))

    async def save(item: ItemView, judgements: list[Judgement], revisited: bool) -> None:
        try:
            await _stored(start.writer.submit(_ratings(start, item, judgements)), item)
        except StoreError as error:
            if not rater.save_failed(item, error):
                raise
            agenda.again(item)
            return
        agenda.rated(item, revisited)
        summary.items += 1
        summary.judgements += len(judgements)
        summary.accepted += sum(j.accepted for j in judgements)
        if on_item:
            on_item(item, judgements)

    tasks: set[asyncio.Task] = set()
    saving: set[asyncio.Task] = set()
    try:
        while True:
            saving = await _drain(saving, BACKLOG)
            while len(tasks) < window and (item := await agenda.next()) is not None:
                tasks.add(asyncio.create_task(rate_one(item, agenda.showing_revisit)))
            if not tasks:
                saving = await _drain(saving, 1)  # everything saved before the rater hears the queue is empty
                if isinstance(await rater.exhausted(), Revisit):
                    agenda.revisit(None)
                    continue
                break
            done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            errors = [task.exception() for task in done if task.exception() is not None]  # each one retrieved
            if errors:
                raise errors[0]  # a fatal error, or the rater stopping, ends the run here
    except StopRun:
        summary.stopped = True
    finally:
        for task in tasks:
            task.cancel()
        try:
            await _drain(saving, 1)
        finally:
            await source.close()  # leases of items still held go back to the other teachers
            await rater.finished()
            await start.writer.close()
    return summary


async def _drain(saving: set[asyncio.Task], below: int) -> set[asyncio.Task]:
    """Wait until fewer than `below` saves are running; a failed save ends the run with its error."""
    while saving:
        finished = {task for task in saving if task.done()}
        for task in finished:
            task.result()
        saving -= finished
        if len(saving) < below:
            break
        await asyncio.wait(saving, return_when=asyncio.FIRST_COMPLETED)
    return saving


async def _stored(write: asyncio.Future, item: ItemView) -> None:
    """Wait for a queued write; a database error becomes a StoreError naming the item."""
    try:
        await write
    except SQLAlchemyError as exc:
        raise StoreError(f"Could not save the ratings of item {item.id}: {getattr(exc, 'orig', None) or exc}",
                         "check that the database is reachable and not locked by another program") from exc
