"""Item queries: keys, filters, the items a rater has not rated yet, and item views with their distractors."""

import hashlib
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from sqlalchemy import bindparam, exists, func, or_, select
from sqlmodel import Session, col

from rater.core.domain import DistractorView, ItemView
from rater.core.errors import InputError
from rater.store.engine import built
from rater.store.tables import Context, Distractor, EvalSlot, Item, Rating, rating_scope

IN_CHUNK = 5000  # values per IN list: SQLite caps the parameters of one statement


def in_chunks(values: Iterable) -> Iterator[list]:
    """`values` in lists short enough for one IN (...) clause on every backend."""
    values = list(values)
    for start in range(0, len(values), IN_CHUNK):
        yield values[start:start + IN_CHUNK]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def item_key(context: str, question: str, answer: str) -> str:
    return sha256("\x1f".join((sha256(context), question, answer)))


@dataclass(frozen=True)
class ItemFilter:
    """Which items and distractors a command works on; empty fields mean no restriction."""

    sources: tuple[str, ...] = ()
    split: str | None = None
    dataset: str | None = None

    def item_clauses(self) -> list:
        clauses = []
        if self.split and self.split != "all":
            clauses.append(col(Item.split) == self.split)
        else:  # items `rater split` left out (texts too long) count nowhere unless asked for by name
            clauses.append(or_(col(Item.split).is_(None), col(Item.split) != "excluded"))
        if self.dataset:
            clauses.append(col(Item.dataset) == self.dataset)
        return clauses

    def distractor_clauses(self) -> list:
        return [col(Distractor.source).in_(self.sources)] if self.sources else []


def _unrated_distractor(rater_id: int, where: ItemFilter):
    rated = exists().where(col(Rating.distractor_id) == col(Distractor.id), col(Rating.rater_id) == rater_id, rating_scope(None))
    return exists().where(col(Distractor.item_id) == col(Item.id), ~rated, *where.distractor_clauses())


def unrated_item_ids(session: Session, *, rater_id: int, where: ItemFilter = ItemFilter(),
                     limit: int | None = None) -> list[int]:
    """Items, in id order, with at least one distractor this rater has not rated in preference rating."""
    query = select(col(Item.id)).where(_unrated_distractor(rater_id, where), *where.item_clauses()).order_by(col(Item.id))
    return list(session.execute(query.limit(limit)).scalars())


def item_views(session: Session, *, item_ids: Sequence[int], where: ItemFilter = ItemFilter()) -> list[ItemView]:
    """Items with their (filtered) distractors, in the order of `item_ids`."""
    if not item_ids:
        return []
    texts = _item_rows(session, item_ids)
    distractors: dict[int, list[DistractorView]] = {i: [] for i in item_ids}
    statement = built(("distractors of items", where), lambda: select(
        col(Distractor.id), col(Distractor.item_id), col(Distractor.text), col(Distractor.source))
        .where(col(Distractor.item_id).in_(bindparam("item_ids", expanding=True)), *where.distractor_clauses())
        .order_by(col(Distractor.item_id), col(Distractor.source), col(Distractor.position), col(Distractor.id)))
    for d in session.execute(statement, {"item_ids": list(item_ids)}):
        distractors[d.item_id].append(DistractorView(d.id, d.text, d.source))
    return [ItemView(i, *texts[i][:3], tuple(distractors[i]), uncertainty=texts[i][3]) for i in item_ids if i in texts]


def item_texts(session: Session, item_ids: Iterable[int]) -> dict[int, tuple[str, str, str]]:
    """(context, question, answer) by item id."""
    return {i: row[:3] for i, row in _item_rows(session, item_ids).items()}


def _item_rows(session: Session, item_ids: Iterable[int]) -> dict[int, tuple[str, str, str, float | None]]:
    """(context, question, answer, uncertainty) by item id."""
    found: dict[int, tuple[str, str, str, float | None]] = {}
    statement = built(("item texts",), lambda: select(
        col(Item.id), col(Context.text), col(Item.question), col(Item.answer), col(Item.uncertainty))
        .join(Context, col(Context.id) == col(Item.context_id)).where(col(Item.id).in_(bindparam("item_ids", expanding=True))))
    for chunk in in_chunks(item_ids):
        rows = session.execute(statement, {"item_ids": chunk})
        found.update((r[0], (r[1], r[2], r[3], r[4])) for r in rows)
    return found


def eval_set_views(session: Session, *, eval_set_id: int) -> list[ItemView]:
    """The items of an evaluation set in its fixed order, each with exactly its slots' distractors (a distractor
    standing in two slots of one item is shown once)."""
    rows = session.execute(
        select(col(EvalSlot.position), col(EvalSlot.item_id), col(Distractor.id), col(Distractor.text), col(Distractor.source))
        .join(Distractor, col(Distractor.id) == col(EvalSlot.distractor_id))
        .where(col(EvalSlot.eval_set_id) == eval_set_id).order_by(col(EvalSlot.position), col(EvalSlot.slot))).all()
    order: dict[int, int] = {}
    slots: dict[int, dict[int, DistractorView]] = {}
    for position, item_id, d_id, text, source in rows:
        order.setdefault(position, item_id)
        slots.setdefault(position, {}).setdefault(d_id, DistractorView(d_id, text, source))
    base = item_texts(session, list(set(order.values())))
    return [ItemView(i, *base[i], tuple(slots[p].values())) for p, i in sorted(order.items())]


def count_items(session: Session) -> int:
    return session.execute(select(func.count()).select_from(Item)).scalar_one()


def count_items_without_distractors(session: Session, *, where: ItemFilter = ItemFilter()) -> int:
    """Items the filter selects that have no distractor (of the filter's sources) at all: nothing to rate."""
    has_any = exists().where(col(Distractor.item_id) == col(Item.id), *where.distractor_clauses())
    query = select(func.count()).select_from(Item).where(~has_any, *where.item_clauses())
    return session.execute(query).scalar_one()


def count_items_with_distractors(session: Session, *, where: ItemFilter = ItemFilter()) -> int:
    """Items the filter selects that have something to rate: the N of a rating screen's n / N."""
    has_any = exists().where(col(Distractor.item_id) == col(Item.id), *where.distractor_clauses())
    return session.execute(select(func.count()).select_from(Item).where(has_any, *where.item_clauses())).scalar_one()


def item_id_span(session: Session, *, where: ItemFilter = ItemFilter()) -> tuple[int, int] | None:
    """The lowest and highest id of the items the filter selects (None: there are none)."""
    low, high = session.execute(select(func.min(col(Item.id)), func.max(col(Item.id))).where(*where.item_clauses())).one()
    return None if low is None else (int(low), int(high))


def items_by_split(session: Session, *, dataset: str | None = None) -> dict[str, int]:
    """Items per split ("none" for items never split)."""
    query = select(func.coalesce(col(Item.split), "none"), func.count()).group_by(col(Item.split))
    if dataset:
        query = query.where(col(Item.dataset) == dataset)
    return {split: count for split, count in sorted(session.execute(query).all())}


def check_split_has_items(session: Session, split: str | None, *, dataset: str | None = None) -> None:
    """A split that holds no item is a mistake: the error names the splits that do."""
    if not split or split == "all":
        return
    found = items_by_split(session, dataset=dataset)
    if found.get(split):
        return
    if not found:
        raise InputError("The database has no items.", "import some first (`rater import FILE`, or `rater demo`)")
    where = ", ".join(f"{name} {count}" for name, count in found.items())
    hint = "run `rater split` first, or pass --split all" if set(found) <= {"none"} else "pass --split with one of them"
    raise InputError(f"No items in split {split!r}; the items here are in: {where}.", hint)


def check_sources(session: Session, sources: Sequence[str]) -> None:
    """Every named source must have distractors; the error lists the sources there are."""
    known = set(session.execute(select(col(Distractor.source)).distinct()).scalars())
    unknown = [s for s in sources if s not in known]
    if unknown:
        raise InputError(f"No distractors from source {', '.join(map(repr, unknown))} in this database.",
                         f"sources here: {', '.join(sorted(known)) or 'none (import items first)'}")
