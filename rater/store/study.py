"""The study's sharing rule, in one place (`Study`): each item goes to teachers until K different teachers have rated
it, and a teacher never gets an item twice; K is stored with the study, so every teacher follows one rule. An item a teacher has open is held by a lease, which counts towards K until the
item is rated, released or the lease expires.

K stays exact when teachers ask at the same moment because claims are serialized per item: on SQLite the claim's
transaction starts with a write, so it holds the database's write lock (and reads the newest data) until it
commits; on PostgreSQL each candidate item row is locked with FOR UPDATE SKIP LOCKED and counted again in a fresh
statement before the lease goes in."""

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterable

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    case,
    cast,
    delete,
    distinct,
    event,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col

from rater.core.domain import RaterKind
from rater.core.errors import InputError
from rater.core.text import plural
from rater.store.drafts import delete_drafts, drafts_gone, own_drafts
from rater.store.engine import built, dialect_insert
from rater.store.items import ItemFilter, in_chunks
from rater.store.ratings import eval_set_id_of
from rater.store.tables import (
    NEED_UNKNOWN,
    Distractor,
    EvalSet,
    EvalSlot,
    Item,
    Lease,
    RaterRecord,
    Rating,
    StudySetting,
    rating_scope,
    utcnow,
)

LEASE_SECONDS = 120  # an open item is held this long past its holder's last sign of life (renewed while shown)
RENEW_SECONDS = 30  # how often a screen that shows an item renews its hold
LOOK_AGAIN_SECONDS = 30  # how often "nothing is left for you" looks for an item again (another's hold may lapse)
CANDIDATES = 32  # items read per claim attempt
LOCK_RETRIES = 500  # PostgreSQL: rounds of looking again while other claims hold the only candidates
PREFERENCE_OVERLAP = "preference.overlap"
OVERLAP_READ = "rater.overlap"  # session.info: K as read in the current transaction, by scope


@event.listens_for(OrmSession, "after_transaction_end")
def _forget_overlap(session: OrmSession, transaction) -> None:
    """K is read again in the next transaction: a change by `rater study overlap` applies to every teacher at once."""
    if transaction.parent is None:
        session.info.pop(OVERLAP_READ, None)


# counting ---------------------------------------------------------------------------------------------------------

def _teachers_done(eval_set_id: int | None, other_than=None):
    """Distinct teachers with a rating of the item in the scope (a correlated count); a save that came beyond K
    (`Rating.beyond_k`) is not one of the K."""
    query = (select(func.count(distinct(col(Rating.rater_id))))
             .join(RaterRecord, col(RaterRecord.id) == col(Rating.rater_id))
             .where(col(Rating.item_id) == col(Item.id), rating_scope(eval_set_id),
                    col(RaterRecord.kind) == RaterKind.human, col(Rating.beyond_k).is_(False)))
    if other_than is not None:
        query = query.where(col(Rating.rater_id) != other_than)
    return query.scalar_subquery()


def _holding(eval_set_id: int | None, now, other_than=None):
    """Teachers other than `other_than` holding a live lease on the item (a correlated count)."""
    query = select(func.count(distinct(col(Lease.rater_id)))).where(
        col(Lease.item_id) == col(Item.id), _lease_scope(eval_set_id), col(Lease.expires_at) > now)
    if other_than is not None:
        query = query.where(col(Lease.rater_id) != other_than)
    return query.scalar_subquery()


def _leases_gone(*where) -> Any:
    """A DELETE of leases as plain SQL: no lease object is loaded in a session that deletes leases, so the ORM need
    not look for ones to update (a busy server's claims and saves each run one)."""
    return delete(Lease).where(*where).execution_options(synchronize_session=False)


def _lease_scope(eval_set_id: int | None):
    return col(Lease.eval_set_id).is_(None) if eval_set_id is None else col(Lease.eval_set_id) == eval_set_id


def _in_scope(eval_set_id: int | None, where: ItemFilter) -> list:
    if eval_set_id is not None:
        return [col(Item.id).in_(select(col(EvalSlot.item_id)).where(col(EvalSlot.eval_set_id) == eval_set_id))]
    return [select(col(Distractor.id)).where(col(Distractor.item_id) == col(Item.id), *where.distractor_clauses()).exists(),
            *where.item_clauses()]


def in_scope(eval_set_id: int | None, where: ItemFilter) -> list:
    """The clauses that select a study's items: an evaluation set's, or the filter's items with distractors."""
    return _in_scope(eval_set_id, where)


def _order(eval_set_id: int | None):
    if eval_set_id is None:
        return col(Item.id)
    return (select(func.min(col(EvalSlot.position))).where(col(EvalSlot.item_id) == col(Item.id), col(EvalSlot.eval_set_id) == eval_set_id)
            .scalar_subquery())


# claiming ---------------------------------------------------------------------------------------------------------

def _search(eval_set_id: int | None, where: ItemFilter, counted: bool, scan: str, uncertain: bool = False):
    """The claim's search for candidates, built once per kind and kept: its parameters (`rater_id`, `now`, `overlap`,
    `after`, `skipped`) are bound at each claim, so SQLAlchemy reuses the statement's compiled form instead of
    building and compiling it again for every claim of a busy server."""
    key = (eval_set_id, where, counted, scan, uncertain)
    if key not in _SEARCHES:
        rater_id = bindparam("rater_id", type_=Integer)
        mine = select(col(Rating.id)).where(col(Rating.item_id) == col(Item.id), col(Rating.rater_id) == rater_id,
                                       rating_scope(eval_set_id)).exists()
        query = (select(col(Item.id)).where(*_in_scope(eval_set_id, where), ~mine,
                                           col(Item.id).not_in(bindparam("skipped", expanding=True)))
                 .order_by(*([col(Item.uncertainty).desc().nulls_last()] if uncertain else []), _order(eval_set_id),
                           col(Item.id)).limit(CANDIDATES))
        if counted and eval_set_id is None:  # only items that still need a teacher (a partial index)
            query = query.where(col(Item.need) > literal_column("0"))
        if counted:  # else everyone rates everything: the lease only says who has the item open
            query = query.where(_teachers_done(eval_set_id, rater_id)
                                + _holding(eval_set_id, bindparam("now", type_=_LEASE_EXPIRES.type), rater_id)
                                < bindparam("overlap", type_=Integer))
        if scan == "behind":
            query = query.where(col(Item.id) > bindparam("after", type_=Integer))
        elif scan == "up to":
            query = query.where(col(Item.id) <= bindparam("after", type_=Integer))
        _SEARCHES[key] = query
    return _SEARCHES[key]


_SEARCHES: dict[tuple, Any] = {}
_LEASE_EXPIRES = Lease.__table__.c.expires_at  # type: ignore[attr-defined]  # (SQLModel declares __table__ at run time)
_NOW = bindparam("now", type_=_LEASE_EXPIRES.type)


def _claim_next(session: Session, *, rater_id: int, eval_set_id: int | None, where: ItemFilter, overlap: int | None,
                    passed_over: Iterable[int] = (), after: int | None = None,
                    lease_seconds: int = LEASE_SECONDS, uncertain: bool = False) -> int | None:
    """Hold the next item this teacher has not rated and that fewer than `overlap` other teachers have rated or
    hold, in the queue's order; None when there is none. Commit soon after: the claim's locks last until then.

    `after` (preference rating: the item this teacher claimed last) starts the search behind it, so a claim does
    not read again every item finished since the study began; the items up to it are searched only when nothing
    is left behind it (an item another teacher released, or whose lease ran out, comes then).

    On PostgreSQL a claim is three statements: the search, the candidate's lock, and the lease's insert (only while
    the item is still free, counted in that statement, after the lock) with a delete of this teacher's expired
    leases and old lease on the item."""
    now = utcnow()
    postgres = session.get_bind().dialect.name == "postgresql"
    if not postgres:  # a write first: the transaction holds SQLite's write lock from here to its commit
        session.execute(built(("leases expired",), lambda: _leases_gone(col(Lease.expires_at) <= _NOW)), {"now": now})
    values = {"rater_id": rater_id, "now": now, "overlap": overlap, "after": after, "skipped": sorted(set(passed_over)),
              "expires": now + timedelta(seconds=lease_seconds)}
    scans = ["all"]
    if after is not None and eval_set_id is None and not uncertain:  # the queue's order is the item id's
        scans = ["behind", "up to"]
    found = None
    for scan in scans:
        search = _search(eval_set_id, where, overlap is not None, scan, uncertain and eval_set_id is None)
        found = _claim_first(session, search, values, eval_set_id, postgres)
        if found is not None:
            break
    item_id, lease_id = found or (None, None)
    if postgres and found:
        return item_id  # the lease's INSERT has tidied up (`_take`)
    # this teacher's expired leases (only one's own on PostgreSQL: deleting others' could deadlock two claims), and
    # an old lease of theirs on the item (a second tab's)
    session.execute(built(("own leases gone", eval_set_id), lambda: _leases_gone(
        col(Lease.rater_id) == bindparam("rater_id", type_=Integer), or_(
            col(Lease.expires_at) <= _NOW,
            and_(col(Lease.item_id) == bindparam("item_id", type_=Integer), _lease_scope(eval_set_id),
                 col(Lease.id) != bindparam("lease_id", type_=Integer))))),
        {"rater_id": rater_id, "now": now, "item_id": item_id, "lease_id": lease_id})
    return item_id


def _claim_first(session: Session, candidates, values: dict, eval_set_id: int | None,
                 postgres: bool) -> tuple[int, int] | None:
    """The first of `candidates` that is still free once locked (PostgreSQL), and the new lease on it; None when
    there is none."""
    counted = postgres and values["overlap"] is not None
    for _ in range(LOCK_RETRIES):
        busy = False  # a candidate another claim had locked at that moment: look again rather than say "none"
        for item_id in session.execute(candidates, values).scalars():
            if counted and session.execute(select(col(Item.id)).where(col(Item.id) == item_id)
                                           .with_for_update(skip_locked=True)).scalar() is None:
                busy = True
                continue
            lease_id = session.execute(_take(eval_set_id, counted, postgres), {**values, "item_id": item_id}).scalar()
            if lease_id is not None:
                return item_id, lease_id
        if not busy:
            return None
        time.sleep(0.01)  # another claim's transaction lasts milliseconds
    return None


def _take(eval_set_id: int | None, counted: bool, tidy: bool):
    """The lease's INSERT, built once per kind (its parameters bound at each claim). `counted` (PostgreSQL, with
    K): only while fewer than K other teachers have rated or hold the item, counted in this statement, whose
    snapshot, taken after the item's lock was granted, sees every claim committed before. `tidy` (PostgreSQL): the
    statement also deletes this teacher's expired leases and any other lease of theirs on the item (a DELETE in
    a WITH, which sees the table as it was before the insert): a round trip less for every claim."""
    key = (eval_set_id, counted, tidy)
    if key not in _TAKES:
        rater_id, now = bindparam("rater_id", type_=Integer), bindparam("now", type_=_LEASE_EXPIRES.type)
        row = select(col(Item.id), rater_id, literal(eval_set_id, Integer), bindparam("expires", type_=_LEASE_EXPIRES.type),
                     now).where(col(Item.id) == bindparam("item_id", type_=Integer))
        if counted:
            row = row.where(_teachers_done(eval_set_id, rater_id) + _holding(eval_set_id, now, rater_id)
                            < bindparam("overlap", type_=Integer))
        table = Lease.__table__  # type: ignore[attr-defined]
        take = insert(table).from_select(["item_id", "rater_id", "eval_set_id", "expires_at", "created_at"], row)
        if not tidy:
            _TAKES[key] = take.returning(table.c.id)
        else:  # and in the same statement, this teacher's expired leases and old lease on the item (a second tab's)
            taken = take.returning(table.c.id, table.c.item_id).cte("taken")
            gone = _leases_gone(col(Lease.rater_id) == rater_id, or_(
                col(Lease.expires_at) <= now,
                and_(col(Lease.item_id).in_(select(taken.c.item_id)), _lease_scope(eval_set_id)))).cte("gone")
            _TAKES[key] = select(taken.c.id).add_cte(gone)
    return _TAKES[key]


_TAKES: dict[tuple, Any] = {}


def release_leases(session: Session, *, rater_id: int, item_ids: Iterable[int], eval_set_id: int | None) -> None:
    """End this teacher's leases on these items (also used by the save path, in the ratings' transaction)."""
    ids = list(item_ids)
    if ids:
        statement = built(("release leases", eval_set_id), lambda: _leases_gone(
            col(Lease.rater_id) == bindparam("rater_id", type_=Integer),
            col(Lease.item_id).in_(bindparam("item_ids", expanding=True)), _lease_scope(eval_set_id)))
        session.execute(statement, {"rater_id": rater_id, "item_ids": ids})


def recount_need(session: Session, item_ids: Iterable[int] | None = None) -> None:
    """Set `Item.need`, preference rating's teachers still needed under K, for these items (None: all), in the
    caller's transaction; every save of ratings and every change of K calls it. Without K: NEED_UNKNOWN.

    The claim counts again before it takes an item, so `need` only has to be never too low: a save that counted
    before a concurrent one committed leaves it one too high, which costs a look, not a wrong claim."""
    if item_ids is not None:
        item_ids = sorted(set(item_ids))
        if not item_ids:
            return

    def need() -> Any:  # K read within the statement: no round trip of its own on every save
        overlap = select(cast(col(StudySetting.value), Integer)).where(
            col(StudySetting.name) == PREFERENCE_OVERLAP).scalar_subquery()
        left = overlap - _teachers_done(None)
        return case((overlap.is_(None), literal_column(str(NEED_UNKNOWN))), (left > 0, left), else_=0)
    if item_ids is None:
        session.execute(update(Item).values(need=need()).execution_options(synchronize_session=False))
        return
    statement = built(("recount need",), lambda: update(Item).where(
        col(Item.id).in_(bindparam("item_ids", expanding=True))).values(need=need())
        .execution_options(synchronize_session=False))
    for chunk in in_chunks(item_ids):  # always in one order: two saves never lock rows crosswise
        session.execute(statement, {"item_ids": chunk})


# teachers' labels as a sample ---------------------------------------------------------------------------------

UNCERTAIN_SINCE = "teachers.uncertain_order"  # set when a teacher is first shown an item in uncertainty order


def mark_uncertain_order(session: Session) -> None:
    """Remember that a teacher has been shown an item chosen by the judges' uncertainty: teachers' labels are no
    longer a random sample (said by the report's estimates)."""
    session.execute(dialect_insert(session, StudySetting).values(name=UNCERTAIN_SINCE, value=utcnow().isoformat())
                    .on_conflict_do_nothing(index_elements=["name"]))


def uncertain_order_used(session: Session) -> bool:
    return session.get(StudySetting, UNCERTAIN_SINCE) is not None


# progress ---------------------------------------------------------------------------------------------------------

def _items_lacking(session: Session, *, eval_set_id: int | None, where: ItemFilter, overlap: int) -> int:
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
        whose = f"{self.overlap} teacher's" if self.overlap == 1 else f"{self.overlap} teachers'"
        if not self.lacking:
            return f"overlap {self.overlap}: every item has {whose} ratings"
        lack = "still lacks" if self.lacking == 1 else "still lack"
        return f"overlap {self.overlap}: {self.lacking} of {plural(self.items, 'item')} {lack} {whose} ratings"


def _overlap_progress(session: Session, *, eval_set_id: int | None, where: ItemFilter, overlap: int) -> OverlapProgress:
    scope = _in_scope(eval_set_id, where)
    items = session.execute(select(func.count()).select_from(Item).where(*scope)).scalar_one()
    lacking = _items_lacking(session, eval_set_id=eval_set_id, where=where, overlap=overlap)
    by_teacher = dict(session.execute(
        select(col(RaterRecord.name), func.count(distinct(col(Rating.item_id)))).join(RaterRecord, col(RaterRecord.id) == col(Rating.rater_id))
        .join(Item, col(Item.id) == col(Rating.item_id))
        .where(rating_scope(eval_set_id), col(RaterRecord.kind) == RaterKind.human, *scope)
        .group_by(col(RaterRecord.name)).order_by(col(RaterRecord.name))).all())
    return OverlapProgress(overlap, items, lacking, by_teacher)


# the study -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Study:
    """The sharing rule of one scope: preference rating (`eval_set_id` None; `where` selects its items) or one blind
    evaluation set. The only place that reads or sets K, claims and releases items, and counts progress; K is read
    from the database each time, so a change (`rater study overlap`) applies to every teacher at once.

    Every method takes the caller's session and works in its transaction."""

    eval_set_id: int | None = None
    where: ItemFilter = ItemFilter()

    @classmethod
    def named(cls, session: Session, eval_set: str | None = None, where: ItemFilter = ItemFilter()) -> "Study":
        """The study of an evaluation set by name (an unknown name is an error), or of preference rating."""
        return cls(eval_set_id_of(session, eval_set), where if eval_set is None else ItemFilter())

    def overlap(self, session: Session) -> int | None:
        """K: each item goes to teachers until K have rated it; None: everyone rates everything. Read once per
        transaction (a save reads it twice; every read is a round trip to a busy server)."""
        known = session.info.setdefault(OVERLAP_READ, {})
        if self.eval_set_id not in known:
            if self.eval_set_id is not None:
                value = session.execute(built(("set overlap",), lambda: select(col(EvalSet.overlap)).where(
                    col(EvalSet.id) == bindparam("id", type_=Integer))), {"id": self.eval_set_id}).scalar()
            else:
                setting = session.execute(built(("overlap",), lambda: select(col(StudySetting.value)).where(
                    col(StudySetting.name) == PREFERENCE_OVERLAP))).scalar()
                value = int(setting) if setting else None
            known[self.eval_set_id] = value
        return known[self.eval_set_id]

    def set_overlap(self, session: Session, overlap: int | None) -> None:
        if overlap is not None and overlap < 1:
            raise InputError(f"An overlap of {overlap} teachers per item is impossible.",
                             "give 1 or more teachers per item (`rater study overlap 2`), or end sharing out with --off")
        session.info.pop(OVERLAP_READ, None)
        if self.eval_set_id is not None:
            session.execute(update(EvalSet).where(col(EvalSet.id) == self.eval_set_id).values(overlap=overlap))
            return
        if overlap is None:
            session.execute(delete(StudySetting).where(col(StudySetting.name) == PREFERENCE_OVERLAP))
        else:
            session.execute(dialect_insert(session, StudySetting).values(name=PREFERENCE_OVERLAP, value=str(overlap))
                            .on_conflict_do_update(index_elements=["name"], set_={"value": str(overlap)}))
        recount_need(session)

    def follow(self, session: Session, asked: int | None) -> int | None:
        """The K a teacher's run follows: the study's. A teacher who asks for one sets it when the study has none;
        asking for another than the study's is refused, so every teacher follows one rule."""
        stored = self.overlap(session)
        if asked is not None and asked < 1:
            raise InputError(f"--overlap must be 1 or more, got {asked}.", "pass --overlap 1 or more (or leave it out)")
        if asked is None or asked == stored:
            return stored
        if stored is None:  # the first teacher to ask sets it, unless another teacher's ask got there first
            self._set_if_unset(session, asked)
            stored = self.overlap(session)
            if stored == asked:
                return asked
        raise InputError(f"This study shares work out with overlap {stored}; every teacher follows that rule.",
                         f"pass --overlap {stored} or leave it out; to change it for everyone: "
                         "`rater study overlap K` (add --set NAME for an evaluation set)")

    def _set_if_unset(self, session: Session, overlap: int) -> None:
        session.info.pop(OVERLAP_READ, None)
        if self.eval_set_id is not None:
            session.execute(update(EvalSet).where(col(EvalSet.id) == self.eval_set_id, col(EvalSet.overlap).is_(None))
                            .values(overlap=overlap))
            return
        session.execute(dialect_insert(session, StudySetting).values(name=PREFERENCE_OVERLAP, value=str(overlap))
                        .on_conflict_do_nothing(index_elements=["name"]))
        recount_need(session)

    def claim(self, session: Session, *, rater_id: int, passed_over: Iterable[int] = (), after: int | None = None,
              lease_seconds: int = LEASE_SECONDS, uncertain: bool = False) -> int | None:
        """Hold the next item for this teacher under the study's current K (see `_claim_next`); None when there is
        none. `uncertain`: the free item the judges are least sure about first. Commit soon after: the claim's
        locks last until then."""
        return _claim_next(session, rater_id=rater_id, eval_set_id=self.eval_set_id, where=self.where,
                           overlap=self.overlap(session), passed_over=passed_over, after=after,
                           lease_seconds=lease_seconds, uncertain=uncertain)

    def release(self, session: Session, *, rater_id: int, item_ids: Iterable[int]) -> None:
        """Give these items back to the other teachers."""
        release_leases(session, rater_id=rater_id, item_ids=item_ids, eval_set_id=self.eval_set_id)

    def renew(self, session: Session, *, rater_id: int, item_id: int, seconds: int = LEASE_SECONDS) -> bool:
        """Hold the item this teacher has on screen for `seconds` more; False when the hold had already lapsed
        (then it is not taken back: others may have it by now)."""
        held = session.execute(update(Lease).where(
            col(Lease.rater_id) == rater_id, col(Lease.item_id) == item_id, _lease_scope(self.eval_set_id),
            col(Lease.expires_at) > utcnow()).values(expires_at=utcnow() + timedelta(seconds=seconds))
            .returning(col(Lease.id))).first()
        return held is not None

    def end_holds(self, session: Session, *, rater_id: int, item_ids: list[int]) -> set[int]:
        """A save's end of this teacher's hold on its items, in the ratings' transaction: its leases on them and
        its drafts of them go. Returns the items whose lease was still live. On PostgreSQL this is one statement
        (the drafts' DELETE in a WITH): a round trip less for every save on a busy server."""
        eval_set_id, now, live = self.eval_set_id, utcnow(), set()

        def leases_gone() -> Any:
            return _leases_gone(col(Lease.rater_id) == bindparam("rater_id", type_=Integer),
                                col(Lease.item_id).in_(bindparam("item_ids", expanding=True)),
                                _lease_scope(eval_set_id)).returning(col(Lease.item_id),
                                                                     (col(Lease.expires_at) > _NOW).label("live"))
        together = session.get_bind().dialect.name == "postgresql"
        statement = built(("holds end", eval_set_id, together), lambda: leases_gone().add_cte(
            drafts_gone().cte("drafts_gone")) if together else leases_gone())
        for chunk in in_chunks(sorted(set(item_ids))):
            if not together:
                delete_drafts(session, rater_id=rater_id, eval_set_id=eval_set_id, item_ids=chunk)
            for item_id, held in session.execute(statement, {**own_drafts(rater_id, eval_set_id, chunk), "now": now}):
                if held:
                    live.add(item_id)
        return live

    def lapsed_beyond_k(self, session: Session, *, rater_id: int, item_id: int) -> bool:
        """Whether a save of this teacher's whose hold on the item had lapsed (`end_holds`) comes beyond K: K other
        teachers have rated the item meanwhile (those saving in the same transaction included) or hold it now, as
        a claim counts them (a holder's save would otherwise make K + 1)."""
        overlap = self.overlap(session)
        if overlap is None:
            return False
        eval_set_id = self.eval_set_id
        others = session.execute(built(("others done or holding", eval_set_id), lambda: select(
            _teachers_done(eval_set_id, bindparam("rater_id", type_=Integer))
            + _holding(eval_set_id, _NOW, bindparam("rater_id", type_=Integer)))
            .where(col(Item.id) == bindparam("item_id", type_=Integer))),
            {"rater_id": rater_id, "item_id": item_id, "now": utcnow()}).scalar_one()
        return others >= overlap

    def lacking(self, session: Session) -> int | None:
        """Items still short of K teachers' ratings (None without an overlap)."""
        overlap = self.overlap(session)
        if overlap is None:
            return None
        return _items_lacking(session, eval_set_id=self.eval_set_id, where=self.where, overlap=overlap)

    def progress(self, session: Session) -> OverlapProgress | None:
        """K, the study's items, those still short of K and each teacher's count (None without an overlap)."""
        overlap = self.overlap(session)
        if overlap is None:
            return None
        return _overlap_progress(session, eval_set_id=self.eval_set_id, where=self.where, overlap=overlap)
