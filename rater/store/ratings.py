"""Where ratings are saved and read back: raters, one item's judgements in one transaction, rating lookups.

A rating belongs to a scope: preference rating (`eval_set_id` None) or one blind evaluation set, which collects
judgements of its own; every function here takes the scope."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Sequence

from sqlalchemy import Integer, bindparam, case, func, or_, select, update
from sqlmodel import Session, col

from rater.core.domain import Judgement
from rater.core.errors import InputError, StaleSave
from rater.store.engine import built, dialect_insert
from rater.store.items import ItemFilter
from rater.store.tables import (
    Context,
    Distractor,
    EvalSet,
    Item,
    RaterRecord,
    Rating,
    RatingHistory,
    rating_scope,
    saved_id,
    utcnow,
)
from rater.store.tally import is_teacher, retally


def get_or_create_rater(session: Session, *, name: str, kind: str, settings: dict | None = None) -> RaterRecord:
    """The rater named `name`, created when new; a name that belongs to a rater of another kind is refused, so
    rule or judge ratings never land under a teacher's name."""
    session.execute(dialect_insert(session, RaterRecord).values(name=name, kind=kind, settings=json.dumps(
        settings or {}, sort_keys=True)).on_conflict_do_nothing(index_elements=["name"]))
    rater = find_rater(session, name=name)
    assert rater is not None  # inserted above, or there already
    if rater.kind != kind:
        raise InputError(f"The rater name {name!r} belongs to a rater of kind {rater.kind!r}; {kind} ratings cannot "
                         "be stored under it.", "pass another name with --as")
    if settings is not None:
        rater.settings = json.dumps(settings, sort_keys=True)
    return rater


def check_raters(session: Session, names: Sequence[str]) -> None:
    """Every named rater must exist; the error lists the raters there are."""
    known = set(session.execute(select(col(RaterRecord.name))).scalars())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"No rater named {', '.join(map(repr, unknown))} in this database.",
                         f"raters here: {', '.join(sorted(known)) or 'none (nobody has rated yet)'}")


def find_rater(session: Session, *, name: str) -> RaterRecord | None:
    return session.execute(select(RaterRecord).where(col(RaterRecord.name) == name)).scalars().first()


DECISION = ("accepted", "score", "limit", "reason", "rationale")  # what a new revision is about


def _rating_fields(judgement: Judgement) -> dict:
    return dict(accepted=judgement.accepted, score=judgement.score, limit=judgement.limit, reason=judgement.reason,
                rationale=judgement.rationale, shown_position=judgement.position, seconds=judgement.seconds)


def save_judgements(session: Session, *, rater_id: int, item_id: int, judgements: Sequence[Judgement],
                    eval_set_id: int | None = None) -> None:
    """Write one item's judgements in the caller's transaction (see `save_many_judgements`)."""
    save_many_judgements(session, rater_id=rater_id, eval_set_id=eval_set_id, items=[(item_id, judgements)])


def save_many_judgements(session: Session, *, rater_id: int, eval_set_id: int | None,
                         items: Sequence[tuple[int, Sequence[Judgement]]], tally: bool = True) -> None:
    """Write several items' judgements of one rater and scope in the caller's transaction.

    New ratings go in with one INSERT ... ON CONFLICT DO NOTHING, so two writers under one rater name never collide
    on the unique key. The ones that already existed (and a distractor given twice) are then locked (PostgreSQL;
    SQLite holds its write lock from the insert on) and replaced: the old values go to rating_history and the
    revision goes up by one. The conflict clause does not update in place because the history must hold the
    replaced values, which an upsert cannot return. A teacher's items are then tallied again (rater.store.tally),
    unless `tally` is False: the caller does it for all its writes at once."""
    now = utcnow()
    first: dict[int, tuple[int, Judgement]] = {}
    again: list[Judgement] = []
    for item_id, judgements in items:
        for judgement in judgements:
            if judgement.distractor_id in first:
                again.append(judgement)
            else:
                first[judgement.distractor_id] = (item_id, judgement)
    if not first:
        return
    rows = [dict(distractor_id=d, rater_id=rater_id, item_id=item_id, eval_set_id=eval_set_id, created_at=now,
                 updated_at=now, revision=1, **_rating_fields(j)) for d, (item_id, j) in first.items()]
    table = Rating.__table__  # type: ignore[attr-defined]

    def new_ones() -> Any:
        key = ["distractor_id", "rater_id"] + (["eval_set_id"] if eval_set_id is not None else [])
        where = col(Rating.eval_set_id).is_(None) if eval_set_id is None else col(Rating.eval_set_id).is_not(None)
        return (dialect_insert(session, table).on_conflict_do_nothing(index_elements=key, index_where=where)
                .returning(table.c.distractor_id))
    statement = built(("new ratings", session.get_bind().dialect.name, eval_set_id is None), new_ones)
    inserted = set(session.connection().execute(statement, rows).scalars())
    replaced = [j for d, (_, j) in first.items() if d not in inserted] + again
    if replaced:
        _replace(session, rater_id, eval_set_id, replaced, now)
    if tally and is_teacher(session, rater_id):
        retally(session, {eval_set_id: [item_id for item_id, _ in items]})


def _replace(session: Session, rater_id: int, eval_set_id: int | None, judgements: Sequence[Judgement], now) -> None:
    current = {r.distractor_id: r for r in session.execute(
        select(Rating).where(col(Rating.rater_id) == rater_id, rating_scope(eval_set_id),
                             col(Rating.distractor_id).in_([j.distractor_id for j in judgements]))
        .with_for_update()).scalars()}
    for judgement in judgements:
        rating, fields = current[judgement.distractor_id], _rating_fields(judgement)
        if all(getattr(rating, name) == fields[name] for name in DECISION):
            continue  # saved again unchanged: no new revision, no history row
        replace_rating(session, rating, now, **fields)


def replace_rating(session: Session, rating: Rating, now, **fields) -> None:
    """Keep `rating` as it was in rating_history, then give it `fields`, the next revision and `now`."""
    session.add(RatingHistory(rating_id=saved_id(rating), revision=rating.revision, rated_at=rating.updated_at,
                              replaced_at=now, accepted=rating.accepted, score=rating.score, limit=rating.limit,
                              reason=rating.reason, rationale=rating.rationale, shown_position=rating.shown_position,
                              seconds=rating.seconds, beyond_k=rating.beyond_k))
    for name, value in fields.items():
        setattr(rating, name, value)
    rating.updated_at = now
    rating.revision += 1


def rated_distractor_ids(session: Session, *, rater_id: int, distractor_ids: Iterable[int],
                         eval_set_id: int | None = None) -> set[int]:
    ids = list(distractor_ids)
    if not ids:
        return set()
    return set(session.execute(select(col(Rating.distractor_id)).where(
        col(Rating.rater_id) == rater_id, rating_scope(eval_set_id), col(Rating.distractor_id).in_(ids))).scalars())


def ratings_of_item(session: Session, *, rater_id: int, item_id: int,
                    eval_set_id: int | None = None) -> dict[int, Judgement]:
    """This rater's current judgements of one item, by distractor id (with their revisions)."""
    rows = session.execute(built(("ratings of item", eval_set_id), lambda: select(
        col(Rating.distractor_id), col(Rating.accepted), col(Rating.score), col(Rating.limit), col(Rating.reason),
        col(Rating.rationale), col(Rating.shown_position), col(Rating.seconds), col(Rating.revision)).where(
        col(Rating.rater_id) == bindparam("rater_id", type_=Integer),
        col(Rating.item_id) == bindparam("item_id", type_=Integer), rating_scope(eval_set_id))),
        {"rater_id": rater_id, "item_id": item_id})
    return {r.distractor_id: Judgement(r.distractor_id, r.accepted, r.score, r.limit, r.reason, r.rationale,
                                       position=r.shown_position, seconds=r.seconds, revision=r.revision)
            for r in rows}


def mark_beyond_k(session: Session, *, rater_id: int, item_id: int, eval_set_id: int | None,
                  tally: bool = True) -> None:
    """Flag this rater's ratings of the item as given beyond the study's K, and tally the item again (unless
    `tally` is False: the caller does it for all its writes at once)."""
    session.execute(update(Rating).where(col(Rating.rater_id) == rater_id, col(Rating.item_id) == item_id,
                                         rating_scope(eval_set_id)).values(beyond_k=True))
    if tally and is_teacher(session, rater_id):
        retally(session, {eval_set_id: [item_id]})


def check_not_stale(session: Session, *, rater_id: int, item_id: int, eval_set_id: int | None,
                    expected: dict[int, int | None]) -> None:
    """A teacher's save is based on what the screen showed: for each distractor, the revision of the rating it
    showed (None: not rated). When another window of the same teacher saved meanwhile, StaleSave carries the
    answer now stored, and nothing is written."""
    stored = ratings_of_item(session, rater_id=rater_id, item_id=item_id, eval_set_id=eval_set_id)
    if any((stored[d].revision if d in stored else None) != revision for d, revision in expected.items()):
        raise StaleSave(item_id, stored)


def rater_acceptance(session: Session, *, rater_id: int, eval_set_id: int | None = None) -> tuple[int, int]:
    """(accepted, rated) over everything this rater has rated in the scope."""
    accepted, rated = session.execute(select(func.count().filter(col(Rating.accepted)), func.count())
                                      .where(col(Rating.rater_id) == rater_id, rating_scope(eval_set_id))).one()
    return int(accepted or 0), int(rated)


def eval_set_id_of(session: Session, name: str | None) -> int | None:
    """The id of the evaluation set `name` (None for preference rating); an unknown name is an error."""
    if name is None:
        return None
    found = session.execute(select(col(EvalSet.id)).where(col(EvalSet.name) == name)).scalar()
    if found is None:
        names = ", ".join(session.execute(select(col(EvalSet.name)).order_by(col(EvalSet.name))).scalars()) or "none"
        raise InputError(f"No evaluation set named {name!r}.", f"sets here: {names}; build one with `rater eval build`")
    return found


def rated_item_ids(session: Session, *, rater_names: Sequence[str] = (), where: ItemFilter = ItemFilter(),
                   eval_set_id: int | None = None) -> list[int]:
    """Items with at least one rating in the scope by the named raters (any rater when none are named)."""
    query = (select(col(Rating.item_id)).join(Distractor, col(Distractor.id) == col(Rating.distractor_id))
             .where(rating_scope(eval_set_id), *where.distractor_clauses()).distinct())
    if rater_names:
        query = query.join(RaterRecord, col(RaterRecord.id) == col(Rating.rater_id)).where(col(RaterRecord.name).in_(rater_names))
    return sorted(session.execute(query).scalars())


def item_ratings(session: Session, *, item_id: int, rater_names: Sequence[str] = (),
                 eval_set_id: int | None = None) -> dict[int, dict[str, Judgement]]:
    """{distractor id: {rater name: judgement}} for one item in the scope."""
    query = (select(col(Rating.distractor_id), col(RaterRecord.name), col(Rating.accepted), col(Rating.score), col(Rating.limit), col(Rating.reason),
                    col(Rating.rationale)).join(RaterRecord, col(RaterRecord.id) == col(Rating.rater_id))
             .where(col(Rating.item_id) == item_id, rating_scope(eval_set_id)))
    if rater_names:
        query = query.where(col(RaterRecord.name).in_(rater_names))
    cells: dict[int, dict[str, Judgement]] = {}
    for d_id, name, *fields in session.execute(query):
        cells.setdefault(d_id, {})[name] = Judgement(d_id, *fields)
    return cells


def disagreement_item_ids(session: Session, *, item_ids: Sequence[int], rater_names: Sequence[str] = (),
                          eval_set_id: int | None = None) -> list[int]:
    """Of `item_ids`, those with a distractor that the (named) raters judged differently, in one query (no IN
    list, so any number of items works)."""
    query = (select(col(Rating.item_id)).join(RaterRecord, col(RaterRecord.id) == col(Rating.rater_id)).where(rating_scope(eval_set_id))
             .group_by(col(Rating.item_id), col(Rating.distractor_id)).having(func.count(func.distinct(col(Rating.accepted))) > 1))
    if rater_names:
        query = query.where(col(RaterRecord.name).in_(rater_names))
    found = set(session.execute(query).scalars())
    return [i for i in item_ids if i in found]


def rated_items_newest_last(session: Session, *, rater_id: int, eval_set_id: int | None) -> list[int]:
    """The items this rater has rated in the scope, in the order it first rated them (the last rated last)."""
    first = func.min(col(Rating.created_at))
    return list(session.execute(select(col(Rating.item_id)).where(col(Rating.rater_id) == rater_id,
                                                                  rating_scope(eval_set_id))
                                .group_by(col(Rating.item_id)).order_by(first, col(Rating.item_id))).scalars())


@dataclass(frozen=True)
class RatedItem:
    """One entry of a teacher's history: an item rated in a scope, when, and how many of its distractors were
    accepted."""

    item_id: int
    question: str
    answer: str
    saved_at: datetime
    accepted: int
    rated: int


def rater_history(session: Session, *, rater_id: int, eval_set_id: int | None, text: str = "",
                  limit: int = 200) -> list[RatedItem]:
    """A rater's rated items in the scope, the latest saved first; `text` keeps those whose question, answer or
    context holds it (case ignored). Never a distractor's source."""
    last = func.max(col(Rating.updated_at))
    query = (select(col(Item.id), col(Item.question), col(Item.answer), last,
                    func.sum(case((col(Rating.accepted), 1), else_=0)), func.count())
             .join(Item, col(Item.id) == col(Rating.item_id))
             .where(col(Rating.rater_id) == rater_id, rating_scope(eval_set_id))
             .group_by(col(Item.id), col(Item.question), col(Item.answer)).order_by(last.desc(), col(Item.id).desc()))
    if text.strip():
        pattern = f"%{text.strip().lower()}%"
        query = query.join(Context, col(Context.id) == col(Item.context_id)).where(or_(
            func.lower(col(Item.question)).like(pattern), func.lower(col(Item.answer)).like(pattern),
            func.lower(col(Context.text)).like(pattern)))
    return [RatedItem(*row) for row in session.execute(query.limit(limit)).all()]
