"""The teachers' ratings summed per teacher and item, and per item and source (TeacherTally, SourceTally), so the
organizer's status of a study of a million ratings reads a few hundred thousand small rows instead of every rating
beside every other teacher's (rater/evaluation/status.py).

Every write of ratings keeps them in its own transaction: `retally` counts the changed items again from their
ratings (a few rows each). On PostgreSQL it first locks the items' rows in id order, so two saves of one item
count one after the other and the second sees the first's ratings."""

from typing import Iterable, Mapping

from sqlalchemy import Integer, case, delete, func, insert, literal, select
from sqlmodel import Session, col

from rater.core.domain import RaterKind
from rater.store.items import in_chunks
from rater.store.tables import Distractor, EvalSet, Item, RaterRecord, Rating, SourceTally, TeacherTally

_RATING = Rating.__table__  # type: ignore[attr-defined]  # (SQLModel declares __table__ only at run time)


def tally_scope(eval_set_id: int | None) -> int:
    """The tallies' scope: 0 for preference rating, else the evaluation set's id."""
    return 0 if eval_set_id is None else eval_set_id


def _teachers_ratings(table, eval_set_id: int | None, item_ids: list[int] | None) -> list:
    """The teachers' ratings of the scope, of these items (None: all)."""
    c = table.c
    return [*([] if item_ids is None else [c.item_id.in_(item_ids)]),
            c.eval_set_id.is_(None) if eval_set_id is None else c.eval_set_id == eval_set_id,
            c.rater_id.in_(select(col(RaterRecord.id)).where(col(RaterRecord.kind) == RaterKind.human))]


def _ones(condition):
    return case((condition, 1), else_=0)


def _teacher_rows(eval_set_id: int | None, item_ids: list[int] | None):
    """Per teacher and item: ratings, accepts, the time on the item, ratings beyond K, the last save, and the other
    teachers' labels beside this teacher's on the same distractors (each distractor's accepts `a` of `n` labels,
    less the teacher's own)."""
    other, r = _RATING.alias("other"), _RATING.alias("r")
    labels = (select(other.c.distractor_id, func.count().label("n"), func.sum(_ones(other.c.accepted)).label("a"))
              .where(*_teachers_ratings(other, eval_set_id, item_ids)).group_by(other.c.distractor_id)
              .subquery("labels"))
    a, n, mine = labels.c.a, labels.c.n, r.c.accepted
    return (select(literal(tally_scope(eval_set_id), Integer), r.c.item_id, r.c.rater_id, func.count(),
                   func.sum(_ones(mine)), func.max(r.c.seconds), func.sum(_ones(r.c.beyond_k)),
                   func.max(r.c.updated_at),
                   func.sum(case((mine, a - 1), else_=0)), func.sum(case((mine, n - a), else_=0)),
                   func.sum(case((mine, 0), else_=a)), func.sum(case((mine, 0), else_=n - a - 1)))
            .join(labels, labels.c.distractor_id == r.c.distractor_id)
            .where(*_teachers_ratings(r, eval_set_id, item_ids)).group_by(r.c.item_id, r.c.rater_id))


def _source_rows(eval_set_id: int | None, item_ids: list[int] | None):
    r = _RATING.alias("r")
    return (select(literal(tally_scope(eval_set_id), Integer), r.c.item_id, col(Distractor.source), func.count(),
                   func.sum(_ones(r.c.accepted)))
            .join(Distractor, col(Distractor.id) == r.c.distractor_id)
            .where(*_teachers_ratings(r, eval_set_id, item_ids)).group_by(r.c.item_id, col(Distractor.source)))


_TEACHER_COLUMNS = ["scope", "item_id", "rater_id", "rated", "accepted", "seconds", "beyond", "updated_at",
                    "agree_accept", "accept_reject", "reject_accept", "agree_reject"]
_SOURCE_COLUMNS = ["scope", "item_id", "source", "rated", "accepted"]


def retally(session: Session, items: Mapping[int | None, Iterable[int]]) -> None:
    """Count the tallies of these items again from their ratings, by scope (an evaluation set's id, None for
    preference rating), in the caller's transaction after its ratings are written. On PostgreSQL the items' rows
    are locked first, all in id order, so two saves never lock crosswise; FOR NO KEY UPDATE (as an UPDATE of the
    row takes) because the ratings' inserts already hold the rows' key share, which FOR UPDATE would wait on."""
    wanted = {eval_set_id: sorted(set(ids)) for eval_set_id, ids in items.items()}
    session.flush()  # ratings replaced through the ORM
    if session.get_bind().dialect.name == "postgresql":
        for chunk in in_chunks(sorted(set().union(*wanted.values()))):
            session.execute(select(col(Item.id)).where(col(Item.id).in_(chunk)).order_by(col(Item.id))
                            .with_for_update(key_share=True))
    for eval_set_id, ids in wanted.items():
        scope = tally_scope(eval_set_id)
        for chunk in in_chunks(ids):
            for table in (TeacherTally, SourceTally):
                session.execute(delete(table).where(col(table.scope) == scope, col(table.item_id).in_(chunk))
                                .execution_options(synchronize_session=False))
            session.execute(insert(TeacherTally).from_select(_TEACHER_COLUMNS, _teacher_rows(eval_set_id, chunk)))
            session.execute(insert(SourceTally).from_select(_SOURCE_COLUMNS, _source_rows(eval_set_id, chunk)))


def retally_all(session: Session) -> None:
    """Count every tally again from the ratings, in the caller's transaction: for ratings written around the save
    path (a bulk load). One pass per scope, with no list of items."""
    session.flush()
    session.execute(delete(TeacherTally).execution_options(synchronize_session=False))
    session.execute(delete(SourceTally).execution_options(synchronize_session=False))
    for eval_set_id in [None, *session.execute(select(col(EvalSet.id)).order_by(col(EvalSet.id))).scalars()]:
        session.execute(insert(TeacherTally).from_select(_TEACHER_COLUMNS, _teacher_rows(eval_set_id, None)))
        session.execute(insert(SourceTally).from_select(_SOURCE_COLUMNS, _source_rows(eval_set_id, None)))


def is_teacher(session: Session, rater_id: int) -> bool:
    """Whether the rater is a teacher: only teachers' ratings are tallied."""
    rater = session.get(RaterRecord, rater_id)
    return rater is not None and rater.kind == RaterKind.human
