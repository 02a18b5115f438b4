"""The one runner: drives any Rater over a queue of items and commits each item's judgements at once."""

import asyncio
from dataclasses import dataclass, field
from typing import Callable, Iterator

from sqlalchemy import Engine

from rater.store.engine import session_scope
from rater.core.domain import ItemView, Judgement
from rater.core.errors import FatalRaterError, RaterError
from rater.raters.base import Rater
from rater.store.items import ItemFilter, eval_set_views, item_views, unrated_item_ids
from rater.store.ratings import get_or_create_rater, rated_distractor_ids, save_judgements

BATCH = 256  # items loaded from the store at a time


@dataclass
class RunSummary:
    items: int = 0
    judgements: int = 0
    accepted: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def accepted_rate(self) -> float:
        return self.accepted / self.judgements if self.judgements else 0.0


@dataclass(frozen=True)
class Queue:
    """What to rate: a filter over the store, or the fixed order of an evaluation set."""

    where: ItemFilter = ItemFilter()
    eval_set: str | None = None
    limit: int | None = None


@dataclass
class Pending:
    """The queue's items that still have distractors this rater has not rated; views load in batches."""

    engine: Engine
    rater_id: int
    queue: Queue
    ids: list[int] = field(default_factory=list)
    fixed: list[ItemView] | None = None  # an evaluation set's views, in its order

    def __len__(self) -> int:
        return len(self.fixed) if self.fixed is not None else len(self.ids)

    def __iter__(self) -> Iterator[ItemView]:
        if self.fixed is not None:
            yield from self.fixed
            return
        for start in range(0, len(self.ids), BATCH):
            with session_scope(self.engine) as session:
                views = item_views(session, item_ids=self.ids[start:start + BATCH], where=self.queue.where)
                batch = _without_rated(session, self.rater_id, views)
            yield from batch  # outside the session: no read transaction stays open while items are rated


def _without_rated(session, rater_id: int, views: list[ItemView]) -> list[ItemView]:
    rated = rated_distractor_ids(session, rater_id=rater_id, distractor_ids=[d.id for v in views for d in v.distractors])
    kept = [ItemView(v.id, v.context, v.question, v.answer, tuple(d for d in v.distractors if d.id not in rated))
            for v in views]
    return [v for v in kept if v.distractors]


def pending_items(engine: Engine, *, rater_id: int, queue: Queue) -> Pending:
    with session_scope(engine) as session:
        if queue.eval_set:
            views = _without_rated(session, rater_id, eval_set_views(session, name=queue.eval_set))
            return Pending(engine, rater_id, queue, fixed=views[:queue.limit] if queue.limit else views)
        ids = unrated_item_ids(session, rater_id=rater_id, where=queue.where, limit=queue.limit)
    return Pending(engine, rater_id, queue, ids=ids)


def register_rater(engine: Engine, rater: Rater) -> int:
    with session_scope(engine) as session:
        return get_or_create_rater(session, name=rater.name, kind=rater.kind, settings=rater.settings()).id


async def run_rater(rater: Rater, engine: Engine, queue: Queue = Queue(),
                    on_item: Callable[[ItemView, list[Judgement]], None] | None = None,
                    on_start: Callable[[int], None] | None = None) -> RunSummary:
    """Rate every pending item of `queue`; each item's judgements are committed as soon as they exist."""
    rater_id = register_rater(engine, rater)
    rater.started(rater_id)
    items = pending_items(engine, rater_id=rater_id, queue=queue)
    if on_start:
        on_start(len(items))
    summary = RunSummary()
    slots = asyncio.Semaphore(max(1, rater.max_concurrency))
    window = 2 * max(1, rater.max_concurrency) + 2  # items started ahead of the ones in flight

    async def rate_one(item: ItemView) -> None:
        async with slots:
            try:
                judgements = await rater.rate(item)
            except FatalRaterError:
                raise
            except RaterError as exc:
                summary.failures.append(f"item {item.id}: {exc.message}")
                return
        _commit(engine, rater_id, item, judgements, summary)
        if on_item:
            on_item(item, judgements)

    pending: set[asyncio.Task] = set()
    try:
        for item in items:
            if len(pending) >= window:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # a fatal error stops the run here
            pending.add(asyncio.create_task(rate_one(item)))
        if pending:
            await asyncio.gather(*pending)
    finally:
        for task in pending:
            task.cancel()
        await rater.finished()
    return summary


def _commit(engine: Engine, rater_id: int, item: ItemView, judgements: list[Judgement], summary: RunSummary) -> None:
    if not judgements:
        summary.skipped += 1
        return
    known = {d.id for d in item.distractors}
    unknown = [j.distractor_id for j in judgements if j.distractor_id not in known]
    if unknown:
        raise RaterError(f"The rater returned judgements for distractors {unknown} not shown with item {item.id}.",
                         "this is a bug in the rater plugin")
    with session_scope(engine) as session:
        save_judgements(session, rater_id=rater_id, item_id=item.id, judgements=judgements)
    summary.items += 1
    summary.judgements += len(judgements)
    summary.accepted += sum(j.accepted for j in judgements)
