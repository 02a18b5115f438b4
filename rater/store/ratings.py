"""Where ratings are saved and read back: raters, one item's judgements in one transaction, rating lookups."""

import json
from dataclasses import dataclass
from typing import Iterable, Sequence

from sqlalchemy import and_, func, select
from sqlmodel import Session

from rater.core.domain import Judgement
from rater.store.items import ItemFilter
from rater.store.tables import Distractor, EvalSet, EvalSlot, Rater, Rating, RatingHistory, utcnow


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


def rated_distractor_ids(session: Session, *, rater_id: int, distractor_ids: Iterable[int]) -> set[int]:
    ids = list(distractor_ids)
    if not ids:
        return set()
    return set(session.execute(select(Rating.distractor_id).where(
        Rating.rater_id == rater_id, Rating.distractor_id.in_(ids))).scalars())


def ratings_of_item(session: Session, *, rater_id: int, item_id: int) -> dict[int, Rating]:
    rows = session.execute(select(Rating).where(and_(Rating.rater_id == rater_id, Rating.item_id == item_id)))
    return {r.distractor_id: r for r in rows.scalars()}


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
