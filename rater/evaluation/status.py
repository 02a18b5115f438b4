"""The study as its organizer needs to see it: items teachers can get, done, lacking K, beyond K, per split and per
source; per teacher their items, pace (median seconds on an item), share accepted, agreement with the other
teachers so far and last activity; and who holds which item now. Excluded items are never counted (ItemFilter)."""

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import case, false, func, select
from sqlmodel import Session, col

from rater.core.domain import RaterKind
from rater.evaluation.agreement import kappa_of_table
from rater.store.flags import flagged_by_majority, flags
from rater.store.items import ItemFilter
from rater.store.study import Study, in_scope
from rater.store.tables import Distractor, Item, Lease, RaterRecord, Rating, SourceTally, TeacherTally, utcnow
from rater.store.tally import tally_scope

FAST = 0.25  # a teacher whose median seconds per item is below this share of the others' median is marked


@dataclass
class TeacherStatus:
    items: int
    median_seconds: float | None
    accepted_rate: float | None
    kappa: float | None
    kappa_n: int
    flagged: int  # items of the study this teacher flagged as broken
    last_active: str | None
    fast: bool = False


@dataclass
class StudyStatus:
    scope: str
    overlap: int | None
    items: int
    done: int
    lacking: int
    beyond_k: int
    by_split: dict[str, dict[str, int]] = field(default_factory=dict)
    by_source: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    teachers: dict[str, TeacherStatus] = field(default_factory=dict)
    held: list[dict[str, object]] = field(default_factory=list)
    flags: list[dict[str, object]] = field(default_factory=list)  # flagged items with their notes, latest first
    fast_rule: str = (f"marked fast: median seconds per item below {FAST:.0%} of the median of the other teachers' "
                      "medians")

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class _Counts:
    """What the status is assembled from, per teacher and item, per teacher and per source."""

    counted: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # item -> teachers toward K
    beyond: set[int] = field(default_factory=set)  # items with a rating saved beyond K
    teachers: dict[int, dict] = field(default_factory=lambda: defaultdict(
        lambda: {"items": 0, "accepted": 0, "rated": 0, "last": None, "seconds": []}))
    pairs: dict[int, dict[tuple[bool, bool], int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int)))  # teacher -> (mine, other's) -> labels
    sources: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))  # [rated, accepted]

    def teacher_item(self, rater_id: int, item_id: int, rated: int, accepted: int, seconds: float | None,
                     beyond: bool) -> None:
        if beyond:
            self.beyond.add(item_id)
        else:
            self.counted[item_id] += 1
        t = self.teachers[rater_id]
        t["items"] += 1
        t["accepted"] += int(accepted or 0)
        t["rated"] += int(rated)
        if seconds is not None:
            t["seconds"].append(seconds)

    def active(self, rater_id: int, last: datetime | None) -> None:
        t = self.teachers[rater_id]
        if last is not None and (t["last"] is None or last > t["last"]):
            t["last"] = last


def study_status(session: Session, *, eval_set_id: int | None = None, where: ItemFilter = ItemFilter(),
                 scope: str = "preference rating") -> StudyStatus:
    """The study's status. Counted from the teachers' tallies that every save keeps (rater.store.tally), so a study
    of 100,000 items and 1,000,000 ratings reads about 300,000 small rows (benchmarks/bench_status.py); with a
    filter of sources, which the tallies do not keep apart, from the ratings themselves."""
    overlap = Study(eval_set_id, where).overlap(session)
    items = select(col(Item.id).label("id"), func.coalesce(col(Item.split), "none").label("split")).where(
        *in_scope(eval_set_id, where)).subquery("study_item")
    item_split = dict(_raw_rows(session.connection(), select(items.c.id, items.c.split)))
    names = dict(session.execute(select(col(RaterRecord.id), col(RaterRecord.name))
                                 .where(col(RaterRecord.kind) == RaterKind.human)).all())
    counts = (_from_ratings(session, eval_set_id, where, item_split, list(names)) if where.sources
              else _from_tallies(session, eval_set_id, where, item_split))
    need = overlap or 1
    done_items = {i for i, teachers in counts.counted.items() if teachers >= need and i in item_split}
    by_split: dict[str, dict[str, int]] = defaultdict(lambda: {"items": 0, "done": 0})
    for item_id, split in item_split.items():
        by_split[split]["items"] += 1
        by_split[split]["done"] += item_id in done_items
    status = StudyStatus(scope, overlap, len(item_split), len(done_items), len(item_split) - len(done_items),
                         len(counts.beyond), dict(sorted(by_split.items())))
    status.by_source = {source: {"rated": n, "accepted_rate": accepted / n if n else None}
                        for source, (n, accepted) in sorted(counts.sources.items())}
    per_teacher, pairs = counts.teachers, counts.pairs
    all_flags = flags(session)
    out_of_exports = flagged_by_majority(session) if all_flags else set()
    in_study = set(item_split)
    flagged_by: dict[str, int] = defaultdict(int)
    for f in all_flags:
        if f.item_id in in_study:
            flagged_by[f.teacher] += 1
            status.flags.append({"item": f.item_id, "question": f.question, "teacher": f.teacher, "note": f.note,
                                 "at": f.at.isoformat(timespec="seconds"),
                                 "left_out_of_exports": f.item_id in out_of_exports})
    for rater_id, t in sorted(per_teacher.items(), key=lambda kv: names[kv[0]]):
        name, table = names[rater_id], pairs.get(rater_id, {})
        shared = sum(table.values())
        status.teachers[name] = TeacherStatus(
            items=t["items"], median_seconds=_median(t),
            accepted_rate=t["accepted"] / t["rated"] if t["rated"] else None,
            kappa=kappa_of_table(table) if shared else None, kappa_n=shared, flagged=flagged_by.get(name, 0),
            last_active=t["last"].isoformat(timespec="seconds") if isinstance(t["last"], datetime) else None)
    medians = {n: t.median_seconds for n, t in status.teachers.items() if t.median_seconds is not None}
    for name, median in medians.items():
        others_median = [m for n, m in medians.items() if n != name]
        if others_median and median < FAST * statistics.median(others_median):
            status.teachers[name].fast = True
    now = utcnow()
    lease_scope = col(Lease.eval_set_id).is_(None) if eval_set_id is None else col(Lease.eval_set_id) == eval_set_id
    status.held = [{"teacher": name, "item": item_id, "since": created.isoformat(timespec="seconds")}
                   for name, item_id, created in session.execute(
                       select(col(RaterRecord.name), col(Lease.item_id), col(Lease.created_at))
                       .join(RaterRecord, col(RaterRecord.id) == col(Lease.rater_id))
                       .where(lease_scope, col(Lease.expires_at) > now).order_by(col(Lease.created_at))).all()
                   if item_id in item_split]  # the study's items only (a split asked for)
    return status


def _median(teacher: dict) -> float | None:
    return round(statistics.median(teacher["seconds"]), 2) if teacher["seconds"] else None


def _raw_rows(connection, query) -> list[tuple]:
    """The rows of `query` as the database driver gives them (plain tuples of plain values)."""
    compiled = query.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    parameters = compiled.construct_params()
    if compiled.positional:
        parameters = tuple(parameters[name] for name in compiled.positiontup)
    cursor = connection.connection.cursor()
    try:
        cursor.execute(str(compiled), parameters)
        return cursor.fetchall()
    finally:
        cursor.close()


def _from_tallies(session: Session, eval_set_id: int | None, where: ItemFilter, item_split: dict) -> _Counts:
    """The counts from the tallies, summed per teacher and per item in the database; only each teacher's seconds per
    item come back one by one (for their median). Plain Core queries: no ORM row handling."""
    counts, connection, scope = _Counts(), session.connection(), tally_scope(eval_set_id)
    teacher_tally, source_tally = TeacherTally.__table__, SourceTally.__table__  # type: ignore[attr-defined]
    t, s = teacher_tally.c, source_tally.c

    def in_study(query, table):
        query = query.where(table.c.scope == scope)
        if eval_set_id is None:  # an evaluation set's ratings are all of its own items
            query = query.join(Item, col(Item.id) == table.c.item_id).where(*where.item_clauses())
        return query

    for item_id, toward_k, beyond in _raw_rows(connection, select(
            t.item_id, func.sum(case((t.beyond == 0, 1), else_=0)), func.max(t.beyond))
            .where(t.scope == scope).group_by(t.item_id)):
        if item_id in item_split:
            counts.counted[item_id] = int(toward_k)
            if beyond:
                counts.beyond.add(item_id)
    for (rater_id, items, rated, accepted, last,
         agree_accept, accept_reject, reject_accept, agree_reject) in connection.execute(in_study(
            select(t.rater_id, func.count(), func.sum(t.rated), func.sum(t.accepted), func.max(t.updated_at),
                   func.sum(t.agree_accept), func.sum(t.accept_reject), func.sum(t.reject_accept),
                   func.sum(t.agree_reject)), teacher_tally).group_by(t.rater_id)):
        teacher = counts.teachers[rater_id]
        teacher.update(items=int(items), rated=int(rated), accepted=int(accepted))
        counts.active(rater_id, last)
        table = counts.pairs[rater_id]
        table[True, True], table[True, False] = int(agree_accept), int(accept_reject)
        table[False, True], table[False, False] = int(reject_accept), int(agree_reject)
    # Each teacher's seconds per item, for their median. The queries whose rows grow with the study are read through
    # the driver's cursor: SQLAlchemy's row objects would cost as much as the queries.
    seconds = in_study(select(t.rater_id, t.seconds), teacher_tally).where(t.seconds.is_not(None))
    for rater_id, value in _raw_rows(connection, seconds):
        counts.teachers[rater_id]["seconds"].append(value)
    query = in_study(select(s.source, func.sum(s.rated), func.sum(s.accepted)), source_tally)
    for source, rated, accepted in connection.execute(query.group_by(s.source)):
        counts.sources[source] = [int(rated), int(accepted)]
    return counts


def _from_ratings(session: Session, eval_set_id: int | None, where: ItemFilter, item_split: dict,
                  teachers: list[int]) -> _Counts:
    """The same counts from the ratings (a filter of sources): one row per teacher and item, then one pass over the
    ratings, each beside its distractor's accepts (a) and labels (n) from all its teachers."""
    counts = _Counts()
    rating = Rating.__table__.alias("r")  # type: ignore[attr-defined]

    def teacher_ratings(*columns, table=rating):
        """A select of the study's teachers' ratings in `table`. A rating is of a distractor, so its item has one:
        only the item's own filters (split, dataset) are checked, and in an evaluation set none."""
        r = table.c
        query = select(*columns).select_from(table).where(
            r.rater_id.in_(teachers) if teachers else false(),
            r.eval_set_id.is_(None) if eval_set_id is None else r.eval_set_id == eval_set_id)
        if eval_set_id is None:
            query = query.join(Item, col(Item.id) == r.item_id).where(*where.item_clauses())
        if where.sources:
            query = query.join(Distractor, col(Distractor.id) == r.distractor_id).where(*where.distractor_clauses())
        return query

    r = rating.c
    accepted_sum = func.sum(case((r.accepted, 1), else_=0))
    for rater_id, item_id, rated, accepted, seconds, not_beyond in session.execute(teacher_ratings(
            r.rater_id, r.item_id, func.count(), accepted_sum, func.max(r.seconds),
            func.min(case((r.beyond_k, 0), else_=1))).group_by(r.rater_id, r.item_id)).all():
        if item_id in item_split:
            counts.teacher_item(rater_id, item_id, rated, accepted, seconds, not not_beyond)
    # Beside a teacher's accept, the others' labels are a - 1 accepts and n - a rejects; beside a reject, a accepts
    # and n - a - 1 rejects.
    window = teacher_ratings(r.rater_id.label("rater_id"), r.accepted.label("accepted"),
                             r.distractor_id.label("distractor_id"), r.updated_at.label("updated_at"),
                             accepted_sum.over(partition_by=r.distractor_id).label("a"),
                             func.count().over(partition_by=r.distractor_id).label("n")).subquery("beside")
    for rater_id, mine, source, rows, accepts, labels, last in session.execute(
            select(window.c.rater_id, window.c.accepted, col(Distractor.source), func.count(), func.sum(window.c.a),
                   func.sum(window.c.n), func.max(window.c.updated_at))
            .join(Distractor, col(Distractor.id) == window.c.distractor_id)
            .group_by(window.c.rater_id, window.c.accepted, col(Distractor.source))).all():
        rows, accepts = int(rows), int(accepts)
        rejects = int(labels) - accepts
        counts.sources[source][0] += rows
        counts.sources[source][1] += rows if mine else 0
        table = counts.pairs[rater_id]
        counts.active(rater_id, last)
        if mine:
            table[True, True] += accepts - rows
            table[True, False] += rejects
        else:
            table[False, True] += accepts
            table[False, False] += rejects - rows
    return counts
