"""Running a generator over the store: items still short of N distractors from a source get new ones."""

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from rater.generators.base import Generator
from rater.store.engine import session_scope
from rater.store.items import item_views, sha256
from rater.store.tables import Distractor, Item


@dataclass
class GenerationSummary:
    items: int = 0
    added: int = 0
    short: int = 0  # items that still have fewer than N after generation


def items_needing(session: Session, *, source: str, num: int, split: str | None, limit: int | None,
                  dataset: str | None = None) -> list[int]:
    """The first `limit` items of the split (id order) that have fewer than `num` distractors from `source`."""
    query = select(Item.id).order_by(Item.id)
    if split and split != "all":
        query = query.where(Item.split == split)
    if dataset:
        query = query.where(Item.dataset == dataset)
    chosen = list(session.execute(query.limit(limit)).scalars())
    # counted for every item of the source, not through an IN list of `chosen` (SQLite caps query parameters)
    have = dict(session.execute(select(Distractor.item_id, func.count()).where(Distractor.source == source)
                                .group_by(Distractor.item_id)).all())
    return [i for i in chosen if have.get(i, 0) < num]


def add_distractors(session: Session, *, item_id: int, source: str, texts: list[str], num: int) -> int:
    """Store new distinct texts under `source`, up to `num` in all for the item; returns how many were added."""
    existing = {k: p for k, p in session.execute(select(Distractor.key, Distractor.position).where(
        Distractor.item_id == item_id, Distractor.source == source)).all()}
    added = 0
    for text in texts:
        key = sha256(text)
        if len(existing) >= num:
            break
        if key in existing:
            continue
        session.add(Distractor(item_id=item_id, source=source, text=text, key=key, position=len(existing)))
        existing[key] = len(existing)
        added += 1
    return added


async def run_generator(generator: Generator, engine: Engine, *, source: str, num: int = 4, split: str | None = "test",
                        limit: int | None = None, batch_size: int | None = None, dataset: str | None = None,
                        on_start: Callable[[int], None] | None = None,
                        on_batch: Callable[[int, int], None] | None = None) -> GenerationSummary:
    """Generate for every item short of `num`; each batch is committed as soon as it is done, so reruns only
    complete what is missing."""
    with session_scope(engine) as session:
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
                    added = add_distractors(session, item_id=view.id, source=source, texts=found, num=num)
                    summary.added += added
                    summary.items += 1
                    summary.short += len(found) < num
            if on_batch:
                on_batch(len(views), summary.added)
    finally:
        await generator.close()
    return summary
