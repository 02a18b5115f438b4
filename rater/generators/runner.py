"""Running a generator over the store: items still short of N distractors from a source get new ones."""

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from rater.core.text import plural
from rater.generators.base import Generator
from rater.store.engine import session_scope
from rater.store.items import check_split_has_items, item_views, sha256
from rater.store.tables import Distractor, Item


@dataclass
class GenerationSummary:
    items: int = 0
    added: int = 0
    short: int = 0  # items that still have fewer than N after generation
    repeats: int = 0  # generated texts the item already had (from any source), not added
    failed_requests: int = 0  # requests to a model server that failed after every retry


def items_needing(session: Session, *, source: str, num: int, split: str | None, limit: int | None,
                  dataset: str | None = None) -> list[int]:
    """The first `limit` items of the split (id order) that have fewer than `num` distractors from `source`."""
    query = select(col(Item.id)).order_by(col(Item.id))
    if split and split != "all":
        query = query.where(col(Item.split) == split)
    if dataset:
        query = query.where(col(Item.dataset) == dataset)
    chosen = list(session.execute(query.limit(limit)).scalars())
    # counted for every item of the source, not through an IN list of `chosen` (SQLite caps query parameters)
    have = dict(session.execute(select(col(Distractor.item_id), func.count()).where(col(Distractor.source) == source)
                                .group_by(col(Distractor.item_id))).all())
    return [i for i in chosen if have.get(i, 0) < num]


def same_text(text: str) -> str:
    """What counts as the same distractor text: case and surrounding space ignored."""
    return text.strip().casefold()


def add_distractors(session: Session, *, item_id: int, source: str, texts: list[str], num: int) -> tuple[int, int]:
    """Store new texts under `source`, up to `num` of that source for the item. A text the item already has, from
    any source (case and surrounding space ignored), is never added again: it would be rated twice and pair with
    itself in preference data. Returns (added, repeats dropped)."""
    rows = session.execute(select(col(Distractor.text), col(Distractor.source)).where(col(Distractor.item_id) == item_id)).all()
    seen = {same_text(text) for text, _ in rows}
    count = sum(row_source == source for _, row_source in rows)
    added = dropped = 0
    for text in texts:
        if count >= num:
            break
        if same_text(text) in seen:
            dropped += 1
            continue
        session.add(Distractor(item_id=item_id, source=source, text=text, key=sha256(text), position=count))
        seen.add(same_text(text))
        count += 1
        added += 1
    return added, dropped


async def run_generator(generator: Generator, engine: Engine, *, source: str, num: int = 4, split: str | None = "test",
                        limit: int | None = None, batch_size: int | None = None, dataset: str | None = None,
                        on_start: Callable[[int], None] | None = None,
                        on_batch: Callable[[int, int], None] | None = None) -> GenerationSummary:
    """Generate for every item short of `num`; each batch is committed as soon as it is done, so reruns only
    complete what is missing."""
    with session_scope(engine) as session:
        check_split_has_items(session, split, dataset=dataset)
        ids = items_needing(session, source=source, num=num, split=split, limit=limit, dataset=dataset)
    if on_start:
        on_start(len(ids))
    summary = GenerationSummary()
    size = batch_size or generator.default_batch_size
    try:
        for start in range(0, len(ids), size):
            with session_scope(engine) as session:
                views = item_views(session, item_ids=ids[start:start + size])
            texts = await generator.generate(views, num)
            with session_scope(engine) as session:
                for view, found in zip(views, texts):
                    added, repeats = add_distractors(session, item_id=view.id, source=source, texts=found, num=num)
                    summary.added += added
                    summary.repeats += repeats
                    summary.items += 1
                    summary.short += len(found) - repeats < num
            if on_batch:
                on_batch(len(views), summary.added)
            if generator.stopped is not None:
                raise type(generator.stopped)(
                    f"{generator.stopped.message} Stopped after {plural(summary.items, 'item')}; what they got is saved.",
                    generator.stopped.hint)
    finally:
        summary.failed_requests = generator.failed_requests
        await generator.close()
    return summary
