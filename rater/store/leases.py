"""Work shared out with an overlap: each item goes to teachers until K different teachers have rated it, and a
teacher never gets an item twice. An item a teacher has open is held by a lease, which counts towards K until the
item is rated, released or the lease expires.

K stays exact when teachers ask at the same moment because claims are serialized per item: on SQLite the claim's
transaction starts with a write, so it holds the database's write lock (and reads the newest data) until it
commits; on PostgreSQL each candidate item row is locked with FOR UPDATE SKIP LOCKED and counted again in a fresh
statement before the lease goes in."""

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable

from sqlalchemy import delete, distinct, func, select
from sqlmodel import Session

from rater.core.domain import RaterKind
from rater.core.errors import InputError
from rater.store.items import ItemFilter
from rater.store.tables import (
    Distractor,
    EvalSet,
    EvalSlot,
    Item,
    Lease,
    Rater,
    Rating,
    StudySetting,
    rating_scope,
    utcnow,
)

LEASE_SECONDS = 600  # a teacher who walks away holds an item for at most this long
CANDIDATES = 32  # items read per claim attempt
LOCK_RETRIES = 500  # PostgreSQL: rounds of looking again while other claims hold the only candidates
PREFERENCE_OVERLAP = "preference.overlap"


# the study's rule ------------------------------------------------------------------------------------------------

def study_overlap(session: Session, *, eval_set_id: int | None) -> int | None:
    """K of the study (an evaluation set, or preference rating); None: everyone rates everything."""
    if eval_set_id is not None:
        return session.execute(select(EvalSet.overlap).where(EvalSet.id == eval_set_id)).scalar()
    value = session.execute(select(StudySetting.value).where(StudySetting.name == PREFERENCE_OVERLAP)).scalar()
    return int(value) if value else None


def set_study_overlap(session: Session, *, eval_set_id: int | None, overlap: int | None) -> None:
    if overlap is not None and overlap < 1:
        raise InputError(f"An overlap of {overlap} teachers per item is impossible.",
                         "give 1 or more teachers per item (`rater study overlap 2`), or end sharing out with --off")
    if eval_set_id is not None:
        session.execute(EvalSet.__table__.update().where(EvalSet.id == eval_set_id).values(overlap=overlap))
        return
    session.execute(delete(StudySetting).where(StudySetting.name == PREFERENCE_OVERLAP))
    if overlap is not None:
        session.add(StudySetting(name=PREFERENCE_OVERLAP, value=str(overlap)))


def resolve_overlap(session: Session, *, eval_set_id: int | None, asked: int | None) -> int | None:
    """The overlap a teacher's run follows: the study's. A teacher who asks for one sets it when the study has
    none; asking for another than the study's is refused, so every teacher follows one rule."""
    stored = study_overlap(session, eval_set_id=eval_set_id)
    if asked is not None and asked < 1:
        raise InputError(f"--overlap must be 1 or more, got {asked}.", "pass --overlap 1 or more (or leave it out)")
    if asked is None or asked == stored:
        return stored
    if stored is not None:
        raise InputError(f"This study shares work out with overlap {stored}; every teacher follows that rule.",
                         f"pass --overlap {stored} or leave it out; to change it for everyone: "
                         "`rater study overlap K` (add --set NAME for an evaluation set)")
    set_study_overlap(session, eval_set_id=eval_set_id, overlap=asked)
    return asked


# counting ---------------------------------------------------------------------------------------------------------

def _teachers_done(eval_set_id: int | None, other_than: int | None = None):
    """Distinct teachers with a rating of the item in the scope (a correlated count)."""
    query = (select(func.count(distinct(Rating.rater_id))).join(Rater, Rater.id == Rating.rater_id)
             .where(Rating.item_id == Item.id, rating_scope(eval_set_id), Rater.kind == RaterKind.human))
    if other_than is not None:
        query = query.where(Rating.rater_id != other_than)
    return query.scalar_subquery()


def _holding(eval_set_id: int | None, now, other_than: int | None = None):
    """Teachers other than `other_than` holding a live lease on the item (a correlated count)."""
    query = select(func.count(distinct(Lease.rater_id))).where(
        Lease.item_id == Item.id, _lease_scope(eval_set_id), Lease.expires_at > now)
    if other_than is not None:
        query = query.where(Lease.rater_id != other_than)
    return query.scalar_subquery()


def _lease_scope(eval_set_id: int | None):
    return Lease.eval_set_id.is_(None) if eval_set_id is None else Lease.eval_set_id == eval_set_id


def _in_scope(eval_set_id: int | None, where: ItemFilter) -> list:
    if eval_set_id is not None:
        return [Item.id.in_(select(EvalSlot.item_id).where(EvalSlot.eval_set_id == eval_set_id))]
    return [select(Distractor.id).where(Distractor.item_id == Item.id, *where.distractor_clauses()).exists(),
            *where.item_clauses()]


def _order(eval_set_id: int | None):
    if eval_set_id is None:
        return Item.id
    return (select(func.min(EvalSlot.position)).where(EvalSlot.item_id == Item.id, EvalSlot.eval_set_id == eval_set_id)
            .scalar_subquery())


# claiming ---------------------------------------------------------------------------------------------------------

def claim_next_item(session: Session, *, rater_id: int, eval_set_id: int | None, where: ItemFilter, overlap: int,
                    passed_over: Iterable[int] = (), after: int | None = None,
                    lease_seconds: int = LEASE_SECONDS) -> int | None:
    """Hold the next item this teacher has not rated and that fewer than `overlap` other teachers have rated or
    hold, in the queue's order; None when there is none. Commit soon after: the claim's locks last until then.

    `after` (preference rating: the item this teacher claimed last) starts the search behind it, so a claim does
    not read again every item finished since the study began; the items up to it are searched only when nothing
    is left behind it (an item another teacher released, or whose lease ran out, comes then)."""
    now = utcnow()
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:  # only one's own expired leases: deleting others' could deadlock two claims
        session.execute(delete(Lease).where(Lease.rater_id == rater_id, Lease.expires_at <= now))
    else:  # a write first: the transaction holds SQLite's write lock from here to its commit
        session.execute(delete(Lease).where(Lease.expires_at <= now))
    mine = select(Rating.id).where(Rating.item_id == Item.id, Rating.rater_id == rater_id,
                                   rating_scope(eval_set_id)).exists()
    candidates = (select(Item.id).where(*_in_scope(eval_set_id, where), ~mine,
                                        _teachers_done(eval_set_id, rater_id) + _holding(eval_set_id, now, rater_id)
                                        < overlap)
                  .order_by(_order(eval_set_id), Item.id))
    skipped = set(passed_over)
    if skipped:
        candidates = candidates.where(Item.id.not_in(skipped))
    scans = [candidates]
    if after is not None and eval_set_id is None:  # the queue's order is the item id's
        scans = [candidates.where(Item.id > after), candidates.where(Item.id <= after)]
    for scan in scans:
        item_id = _claim_first(session, scan, rater_id, eval_set_id, overlap, now, postgres)
        if item_id is not None:
            session.add(Lease(item_id=item_id, rater_id=rater_id, eval_set_id=eval_set_id,
                              expires_at=now + timedelta(seconds=lease_seconds), created_at=now))
            session.flush()
            return item_id
    return None


def _claim_first(session: Session, candidates, rater_id: int, eval_set_id: int | None, overlap: int, now,
                 postgres: bool) -> int | None:
    """The first of `candidates` that is still free once locked (PostgreSQL), with this teacher's old lease on it
    gone; None when there is none."""
    for _ in range(LOCK_RETRIES):
        busy = False  # a candidate another claim had locked at that moment: look again rather than say "none"
        for item_id in session.execute(candidates.limit(CANDIDATES)).scalars():
            if postgres:
                state = _lock_and_recount(session, item_id, rater_id, eval_set_id, overlap, now)
                busy = busy or state is None
                if not state:
                    continue
            session.execute(delete(Lease).where(Lease.item_id == item_id, Lease.rater_id == rater_id,
                                                _lease_scope(eval_set_id)))
            return item_id
        if not busy:
            return None
        time.sleep(0.01)  # another claim's transaction lasts milliseconds
    return None


def _lock_and_recount(session: Session, item_id: int, rater_id: int, eval_set_id: int | None, overlap: int,
                      now) -> bool | None:
    """PostgreSQL: lock the item row (None if another claim holds it), then count again in a new statement, whose
    snapshot sees every claim committed before the lock was granted: True when the item is still free."""
    if session.execute(select(Item.id).where(Item.id == item_id).with_for_update(skip_locked=True)).scalar() is None:
        return None
    taken = session.execute(select(_teachers_done(eval_set_id, rater_id) + _holding(eval_set_id, now, rater_id))
                            .where(Item.id == item_id)).scalar()
    return taken < overlap


def release_leases(session: Session, *, rater_id: int, item_ids: Iterable[int], eval_set_id: int | None) -> None:
    ids = list(item_ids)
    if ids:
        session.execute(delete(Lease).where(Lease.rater_id == rater_id, Lease.item_id.in_(ids),
                                            _lease_scope(eval_set_id)))


# progress ---------------------------------------------------------------------------------------------------------

def items_lacking(session: Session, *, eval_set_id: int | None, where: ItemFilter = ItemFilter(), overlap: int) -> int:
    """Items of the study with fewer than `overlap` teachers' ratings: what the study still needs."""
    return session.execute(select(func.count()).select_from(Item)
                           .where(*_in_scope(eval_set_id, where), _teachers_done(eval_set_id) < overlap)).scalar_one()


@dataclass(frozen=True)
class OverlapProgress:
    overlap: int
    items: int  # items of the study
    lacking: int  # items with fewer than `overlap` teachers' ratings
    by_teacher: dict[str, int]  # items each teacher has rated

    @property
    def summary(self) -> str:
        if not self.lacking:
            return f"overlap {self.overlap}: every item has {self.overlap} teachers' ratings"
        return f"overlap {self.overlap}: {self.lacking} of {self.items} items still lack {self.overlap} teachers' ratings"


def overlap_progress(session: Session, *, eval_set_id: int | None, where: ItemFilter = ItemFilter(),
                     overlap: int) -> OverlapProgress:
    scope = _in_scope(eval_set_id, where)
    items = session.execute(select(func.count()).select_from(Item).where(*scope)).scalar_one()
    lacking = items_lacking(session, eval_set_id=eval_set_id, where=where, overlap=overlap)
    by_teacher = dict(session.execute(
        select(Rater.name, func.count(distinct(Rating.item_id))).join(Rater, Rater.id == Rating.rater_id)
        .join(Item, Item.id == Rating.item_id)
        .where(rating_scope(eval_set_id), Rater.kind == RaterKind.human, *scope)
        .group_by(Rater.name).order_by(Rater.name)).all())
    return OverlapProgress(overlap, items, lacking, by_teacher)
