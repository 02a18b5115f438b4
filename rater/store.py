"""Store functions: every read and write of items, distractors, raters and ratings goes through here."""

import hashlib
import json
from dataclasses import dataclass
from typing import Iterable, Sequence

from sqlalchemy import and_, exists, func, select
from sqlmodel import Session

from rater.domain import DistractorView, ItemView, Judgement
from rater.models import Context, Distractor, EvalSet, EvalSlot, Item, Rater, Rating, RatingHistory, utcnow


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
            clauses.append(Item.split == self.split)
        if self.dataset:
            clauses.append(Item.dataset == self.dataset)
        return clauses

    def distractor_clauses(self) -> list:
        return [Distractor.source.in_(self.sources)] if self.sources else []


def get_or_create_rater(session: Session, *, name: str, kind: str, settings: dict | None = None) -> Rater:
    rater = session.exec(select(Rater).where(Rater.name == name)).scalars().first()
    if rater is None:
        rater = Rater(name=name, kind=kind, settings=json.dumps(settings or {}, sort_keys=True))
        session.add(rater)
        session.flush()
    elif settings is not None:
        rater.settings = json.dumps(settings, sort_keys=True)
    return rater


def find_rater(session: Session, *, name: str) -> Rater | None:
    return session.exec(select(Rater).where(Rater.name == name)).scalars().first()


def save_judgements(session: Session, *, rater_id: int, item_id: int, judgements: Sequence[Judgement]) -> None:
    """Write one item's judgements; a re-rating replaces the current rating and keeps the old one as history."""
    ids = [j.distractor_id for j in judgements]
    current = {r.distractor_id: r for r in session.exec(
        select(Rating).where(Rating.rater_id == rater_id, Rating.distractor_id.in_(ids))).scalars()}
    now = utcnow()
    for judgement in judgements:
        fields = dict(accepted=judgement.accepted, score=judgement.score, limit=judgement.limit,
                      reason=judgement.reason, rationale=judgement.rationale)
        rating = current.get(judgement.distractor_id)
        if rating is None:
            session.add(Rating(distractor_id=judgement.distractor_id, rater_id=rater_id, item_id=item_id,
                               created_at=now, updated_at=now, **fields))
            continue
        session.add(RatingHistory(rating_id=rating.id, revision=rating.revision, rated_at=rating.updated_at,
                                  replaced_at=now, accepted=rating.accepted, score=rating.score,
                                  limit=rating.limit, reason=rating.reason, rationale=rating.rationale))
        for key, value in fields.items():
            setattr(rating, key, value)
        rating.updated_at = now
        rating.revision += 1


def _unrated_distractor(rater_id: int, where: ItemFilter):
    rated = exists().where(Rating.distractor_id == Distractor.id, Rating.rater_id == rater_id)
    return exists().where(Distractor.item_id == Item.id, ~rated, *where.distractor_clauses())


def unrated_item_ids(session: Session, *, rater_id: int, where: ItemFilter = ItemFilter(),
                     limit: int | None = None) -> list[int]:
    """Items, in id order, that have at least one distractor this rater has not rated."""
    query = select(Item.id).where(_unrated_distractor(rater_id, where), *where.item_clauses()).order_by(Item.id)
    return list(session.execute(query.limit(limit)).scalars())


def next_unrated_item(session: Session, *, rater_id: int, where: ItemFilter = ItemFilter(),
                      after_id: int = 0) -> int | None:
    """The first item after `after_id` with a distractor this rater has not rated."""
    query = (select(Item.id).where(Item.id > after_id, _unrated_distractor(rater_id, where), *where.item_clauses())
             .order_by(Item.id).limit(1))
    return session.execute(query).scalar()


def item_views(session: Session, *, item_ids: Sequence[int], where: ItemFilter = ItemFilter()) -> list[ItemView]:
    """Items with their (filtered) distractors, in the order of `item_ids`."""
    if not item_ids:
        return []
    texts = _item_texts(session, item_ids)
    distractors: dict[int, list[DistractorView]] = {i: [] for i in item_ids}
    for d in session.execute(select(Distractor.id, Distractor.item_id, Distractor.text, Distractor.source)
                             .where(Distractor.item_id.in_(item_ids), *where.distractor_clauses())
                             .order_by(Distractor.item_id, Distractor.source, Distractor.position, Distractor.id)):
        distractors[d.item_id].append(DistractorView(d.id, d.text, d.source))
    return [ItemView(i, *texts[i], tuple(distractors[i])) for i in item_ids if i in texts]


def _item_texts(session: Session, item_ids: Sequence[int]) -> dict[int, tuple[str, str, str]]:
    """(context, question, answer) by item id."""
    rows = session.execute(
        select(Item.id, Context.text, Item.question, Item.answer).join(Context, Context.id == Item.context_id)
        .where(Item.id.in_(item_ids)))
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def eval_set_views(session: Session, *, name: str) -> list[ItemView]:
    """The items of an evaluation set in its fixed order, each with exactly its slots' distractors."""
    eval_set = session.execute(select(EvalSet).where(EvalSet.name == name)).scalars().first()
    if eval_set is None:
        return []
    rows = session.execute(
        select(EvalSlot.position, EvalSlot.item_id, Distractor.id, Distractor.text, Distractor.source)
        .join(Distractor, Distractor.id == EvalSlot.distractor_id)
        .where(EvalSlot.eval_set_id == eval_set.id).order_by(EvalSlot.position, EvalSlot.slot)).all()
    order: dict[int, int] = {}
    slots: dict[int, list[DistractorView]] = {}
    for position, item_id, d_id, text, source in rows:
        order.setdefault(position, item_id)
        slots.setdefault(position, []).append(DistractorView(d_id, text, source))
    base = _item_texts(session, list(set(order.values())))
    return [ItemView(i, *base[i], tuple(slots[p])) for p, i in sorted(order.items())]


def rated_distractor_ids(session: Session, *, rater_id: int, distractor_ids: Iterable[int]) -> set[int]:
    ids = list(distractor_ids)
    if not ids:
        return set()
    return set(session.execute(select(Rating.distractor_id).where(
        Rating.rater_id == rater_id, Rating.distractor_id.in_(ids))).scalars())


def count_items(session: Session) -> int:
    return session.execute(select(func.count()).select_from(Item)).scalar_one()


def ratings_of_item(session: Session, *, rater_id: int, item_id: int) -> dict[int, Rating]:
    rows = session.execute(select(Rating).where(and_(Rating.rater_id == rater_id, Rating.item_id == item_id)))
    return {r.distractor_id: r for r in rows.scalars()}


def count_items_without_distractors(session: Session, *, where: ItemFilter = ItemFilter()) -> int:
    """Items the filter selects that have no distractor (of the filter's sources) at all: nothing to rate."""
    has_any = exists().where(Distractor.item_id == Item.id, *where.distractor_clauses())
    query = select(func.count()).select_from(Item).where(~has_any, *where.item_clauses())
    return session.execute(query).scalar_one()


@dataclass(frozen=True)
class RatingCell:
    accepted: bool
    score: float | None
    limit: float | None
    reason: str | None
    rationale: str | None


def rated_item_ids(session: Session, *, rater_names: Sequence[str] = (), where: ItemFilter = ItemFilter(),
                   eval_set: str | None = None) -> list[int]:
    """Items with at least one rating by the named raters (any rater when none are named), in item order."""
    query = select(Rating.item_id).join(Distractor, Distractor.id == Rating.distractor_id).distinct()
    if rater_names:
        query = query.join(Rater, Rater.id == Rating.rater_id).where(Rater.name.in_(rater_names))
    if where.sources:
        query = query.where(Distractor.source.in_(where.sources))
    if eval_set:
        query = query.where(Rating.distractor_id.in_(
            select(EvalSlot.distractor_id).join(EvalSet, EvalSet.id == EvalSlot.eval_set_id)
            .where(EvalSet.name == eval_set)))
    return sorted(session.execute(query).scalars())


def item_ratings(session: Session, *, item_id: int,
                 rater_names: Sequence[str] = ()) -> dict[int, dict[str, RatingCell]]:
    """{distractor id: {rater name: rating}} for one item."""
    query = (select(Rating.distractor_id, Rater.name, Rating.accepted, Rating.score, Rating.limit, Rating.reason,
                    Rating.rationale).join(Rater, Rater.id == Rating.rater_id).where(Rating.item_id == item_id))
    if rater_names:
        query = query.where(Rater.name.in_(rater_names))
    cells: dict[int, dict[str, RatingCell]] = {}
    for d_id, name, *fields in session.execute(query):
        cells.setdefault(d_id, {})[name] = RatingCell(*fields)
    return cells


def disagreement_item_ids(session: Session, *, item_ids: Sequence[int], rater_names: Sequence[str] = ()) -> list[int]:
    """Of `item_ids`, those with a distractor that the (named) raters judged differently, in one query (no IN
    list, so any number of items works)."""
    query = (select(Rating.item_id).join(Rater, Rater.id == Rating.rater_id)
             .group_by(Rating.item_id, Rating.distractor_id).having(func.count(func.distinct(Rating.accepted)) > 1))
    if rater_names:
        query = query.where(Rater.name.in_(rater_names))
    found = set(session.execute(query).scalars())
    return [i for i in item_ids if i in found]
