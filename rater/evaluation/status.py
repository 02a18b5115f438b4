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
from rater.store.tables import Distractor, Item, Lease, RaterRecord, Rating, utcnow

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


def study_status(session: Session, *, eval_set_id: int | None = None, where: ItemFilter = ItemFilter(),
                 scope: str = "preference rating") -> StudyStatus:
    """The study's status, counted in the database (a handful of grouped queries, none returning a row per rating),
    so a study of 100,000 items and 1,000,000 ratings takes well under 2 s (benchmarks/bench_status.py)."""
    overlap = Study(eval_set_id, where).overlap(session)
    items = select(col(Item.id).label("id"), func.coalesce(col(Item.split), "none").label("split")).where(
        *in_scope(eval_set_id, where)).subquery("study_item")
    item_split = dict(session.execute(select(items.c.id, items.c.split)).all())
    names = dict(session.execute(select(col(RaterRecord.id), col(RaterRecord.name))
                                 .where(col(RaterRecord.kind) == RaterKind.human)).all())
    rating = Rating.__table__.alias("r")  # type: ignore[attr-defined]

    def teacher_ratings(*columns, table=rating):
        """A select of the study's teachers' ratings in `table` (the rating table or an alias). A rating is of a
        distractor, so its item has one: only the item's own filters (split, dataset) are checked, and in an
        evaluation set none (its ratings are of its own items)."""
        r = table.c
        query = select(*columns).select_from(table).where(
            r.rater_id.in_(list(names)) if names else false(),
            r.eval_set_id.is_(None) if eval_set_id is None else r.eval_set_id == eval_set_id)
        if eval_set_id is None:
            query = query.join(Item, col(Item.id) == r.item_id).where(*where.item_clauses())
        if where.sources:
            query = query.join(Distractor, col(Distractor.id) == r.distractor_id).where(*where.distractor_clauses())
        return query

    r = rating.c
    # One row per teacher and item: what the teacher's items, pace, acceptance and the items' K are counted from.
    counted: dict[int, set[int]] = defaultdict(set)  # item -> teachers that count toward K
    beyond: set[int] = set()
    per_teacher: dict[int, dict] = defaultdict(lambda: {"items": 0, "accepted": 0, "rated": 0, "last": None,
                                                        "seconds": []})
    accepted_sum = func.sum(case((r.accepted, 1), else_=0))
    for rater_id, item_id, rated, accepted, seconds, not_beyond in session.execute(teacher_ratings(
            r.rater_id, r.item_id, func.count(), accepted_sum, func.max(r.seconds),
            func.min(case((r.beyond_k, 0), else_=1))).group_by(r.rater_id, r.item_id)).all():
        if item_id not in item_split:
            continue
        (counted[item_id].add(rater_id) if not_beyond else beyond.add(item_id))
        t = per_teacher[rater_id]
        t["items"] += 1
        t["accepted"] += int(accepted or 0)
        t["rated"] += int(rated)
        if seconds is not None:
            t["seconds"].append(seconds)
    need = overlap or 1
    done_items = {i for i, teachers in counted.items() if len(teachers) >= need}
    by_split: dict[str, dict[str, int]] = defaultdict(lambda: {"items": 0, "done": 0})
    for item_id, split in item_split.items():
        by_split[split]["items"] += 1
        by_split[split]["done"] += item_id in done_items
    status = StudyStatus(scope, overlap, len(item_split), len(done_items), len(item_split) - len(done_items),
                         len(beyond), dict(sorted(by_split.items())))
    # One pass over the ratings, each beside its distractor's accepts (a) and labels (n) from all its teachers:
    # the sources' acceptance, and each teacher's agreement with the others on the same distractors, whose labels
    # beside a teacher's are a - 1 accepts and n - a rejects (when the teacher accepted), or a accepts and
    # n - a - 1 rejects (when the teacher rejected).
    window = teacher_ratings(r.rater_id.label("rater_id"), r.accepted.label("accepted"),
                             r.distractor_id.label("distractor_id"), r.updated_at.label("updated_at"),
                             accepted_sum.over(partition_by=r.distractor_id).label("a"),
                             func.count().over(partition_by=r.distractor_id).label("n")).subquery("beside")
    sources: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # source -> [rated, accepted]
    pairs: dict[int, dict[tuple[bool, bool], int]] = defaultdict(lambda: defaultdict(int))
    for rater_id, mine, source, rows, accepts, labels, last in session.execute(
            select(window.c.rater_id, window.c.accepted, col(Distractor.source), func.count(), func.sum(window.c.a),
                   func.sum(window.c.n), func.max(window.c.updated_at)).join(Distractor, col(Distractor.id) == window.c.distractor_id)
            .group_by(window.c.rater_id, window.c.accepted, col(Distractor.source))).all():
        rows, accepts = int(rows), int(accepts)
        rejects = int(labels) - accepts
        sources[source][0] += rows
        sources[source][1] += rows if mine else 0
        table, t = pairs[rater_id], per_teacher[rater_id]
        t["last"] = last if t["last"] is None or (last is not None and last > t["last"]) else t["last"]
        if mine:
            table[True, True] += accepts - rows
            table[True, False] += rejects
        else:
            table[False, True] += accepts
            table[False, False] += rejects - rows
    status.by_source = {source: {"rated": n, "accepted_rate": accepted / n if n else None}
                        for source, (n, accepted) in sorted(sources.items())}
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
            items=t["items"], median_seconds=round(statistics.median(t["seconds"]), 2) if t["seconds"] else None,
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
