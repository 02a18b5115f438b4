"""The study as its organizer needs to see it: items teachers can get, done, lacking K, beyond K, per split and per
source; per teacher their items, pace (median seconds on an item), share accepted, agreement with the other
teachers so far and last activity; and who holds which item now. Excluded items are never counted (ItemFilter)."""

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from rater.core.domain import RaterKind
from rater.evaluation.agreement import cohen_kappa
from rater.store.flags import flagged_by_majority, flags
from rater.store.items import ItemFilter
from rater.store.ratings import rating_scope
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
    study = Study(eval_set_id, where)
    overlap = study.overlap(session)
    clauses = in_scope(eval_set_id, where)
    item_split = dict(session.execute(select(col(Item.id), func.coalesce(col(Item.split), "none")).where(*clauses)).all())
    teacher_rows = session.execute(
        select(col(Rating.item_id), col(Rating.distractor_id), col(RaterRecord.name), col(Rating.accepted),
               col(Rating.seconds), col(Rating.updated_at), col(Rating.beyond_k), col(Distractor.source))
        .join(RaterRecord, col(RaterRecord.id) == col(Rating.rater_id))
        .join(Distractor, col(Distractor.id) == col(Rating.distractor_id))
        .where(rating_scope(eval_set_id), col(RaterRecord.kind) == RaterKind.human,
               col(Rating.item_id).in_(select(col(Item.id)).where(*clauses)), *where.distractor_clauses())).all()
    counted: dict[int, set[str]] = defaultdict(set)  # item -> teachers that count toward K
    beyond: set[int] = set()
    per_teacher: dict[str, dict] = defaultdict(lambda: {"items": set(), "seconds": {}, "accepted": 0, "rated": 0,
                                                        "last": None})
    by_distractor: dict[int, dict[str, bool]] = defaultdict(dict)
    sources: dict[str, list[bool]] = defaultdict(list)
    for item_id, distractor_id, name, accepted, seconds, updated, beyond_k, source in teacher_rows:
        (beyond.add(item_id) if beyond_k else counted[item_id].add(name))
        t = per_teacher[name]
        t["items"].add(item_id)
        if seconds is not None:
            t["seconds"][item_id] = max(seconds, t["seconds"].get(item_id, 0.0))
        t["accepted"] += bool(accepted)
        t["rated"] += 1
        t["last"] = updated if t["last"] is None or updated > t["last"] else t["last"]
        by_distractor[distractor_id][name] = bool(accepted)
        sources[source].append(bool(accepted))
    need = overlap or 1
    done_items = {i for i, names in counted.items() if len(names) >= need and i in item_split}
    by_split: dict[str, dict[str, int]] = defaultdict(lambda: {"items": 0, "done": 0})
    for item_id, split in item_split.items():
        by_split[split]["items"] += 1
        by_split[split]["done"] += item_id in done_items
    status = StudyStatus(scope, overlap, len(item_split), len(done_items), len(item_split) - len(done_items),
                         len(beyond), dict(sorted(by_split.items())))
    status.by_source = {s: {"rated": len(v), "accepted_rate": sum(v) / len(v) if v else None}
                        for s, v in sorted(sources.items())}
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
    for name, t in sorted(per_teacher.items()):
        mine, others = [], []
        for decisions in by_distractor.values():
            if name in decisions:
                for other, decision in decisions.items():
                    if other != name:
                        mine.append(decisions[name])
                        others.append(decision)
        seconds = list(t["seconds"].values())
        status.teachers[name] = TeacherStatus(
            items=len(t["items"]), median_seconds=round(statistics.median(seconds), 2) if seconds else None,
            accepted_rate=t["accepted"] / t["rated"] if t["rated"] else None,
            kappa=cohen_kappa(mine, others) if mine else None, kappa_n=len(mine), flagged=flagged_by.get(name, 0),
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
