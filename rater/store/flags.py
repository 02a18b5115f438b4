"""Items teachers flagged as broken: kept per teacher with an optional note, listed for the organizer, and left out
of exports when a majority of the item's teachers flagged it."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, distinct, func, select
from sqlmodel import Session, col

from rater.core.domain import RaterKind
from rater.store.tables import Flag, Item, RaterRecord, Rating, utcnow


def flag_item(session: Session, *, rater_id: int, item_id: int, note: str | None) -> None:
    """This teacher flags the item (flagging again replaces the note)."""
    session.execute(delete(Flag).where(col(Flag.rater_id) == rater_id, col(Flag.item_id) == item_id))
    session.add(Flag(rater_id=rater_id, item_id=item_id, note=(note or "").strip()[:1000] or None, created_at=utcnow()))


@dataclass(frozen=True)
class Flagged:
    item_id: int
    question: str
    teacher: str
    note: str | None
    at: datetime


def flags(session: Session) -> list[Flagged]:
    """Every flag, the latest first."""
    return [Flagged(*row) for row in session.execute(
        select(col(Flag.item_id), col(Item.question), col(RaterRecord.name), col(Flag.note), col(Flag.created_at))
        .join(Item, col(Item.id) == col(Flag.item_id)).join(RaterRecord, col(RaterRecord.id) == col(Flag.rater_id))
        .order_by(col(Flag.created_at).desc(), col(Flag.id).desc())).all()]


def flagged_by_majority(session: Session) -> set[int]:
    """Items flagged by more than half of their teachers (those who rated or flagged the item, in any scope)."""
    flaggers = dict(session.execute(select(col(Flag.item_id), func.count(distinct(col(Flag.rater_id))))
                                    .group_by(col(Flag.item_id))).all())
    if not flaggers:
        return set()
    teachers: dict[int, set[int]] = {}
    for item_id, rater_id in session.execute(
            select(col(Rating.item_id), col(Rating.rater_id)).distinct()
            .join(RaterRecord, col(RaterRecord.id) == col(Rating.rater_id))
            .where(col(RaterRecord.kind) == RaterKind.human, col(Rating.item_id).in_(list(flaggers)))):
        teachers.setdefault(item_id, set()).add(rater_id)
    for item_id, rater_id in session.execute(select(col(Flag.item_id), col(Flag.rater_id))):
        teachers.setdefault(item_id, set()).add(rater_id)
    return {i for i, n in flaggers.items() if 2 * n > len(teachers[i])}
