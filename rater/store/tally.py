"""The teachers' ratings summed per teacher and item, and per item and source (TeacherTally, SourceTally), so the
organizer's status of a study of a million ratings reads a few hundred thousand small rows instead of every rating
beside every other teacher's (rater/evaluation/status.py).

Every write of ratings keeps them in its own transaction: `retally` counts the changed items again from their
ratings (a few rows each). On PostgreSQL it first locks the items' rows in id order, so two saves of one item
count one after the other and the second sees the first's ratings."""

import weakref
from typing import Any, Iterable, Mapping

from sqlalchemy import Integer, bindparam, case, cast, delete, func, insert, literal, select
from sqlmodel import Session, col

from rater.core.domain import RaterKind
from rater.store.engine import dialect_insert
from rater.store.items import in_chunks
from rater.store.tables import Distractor, EvalSet, Item, RaterRecord, Rating, SourceTally, TeacherTally

_RATING = Rating.__table__  # type: ignore[attr-defined]  # (SQLModel declares __table__ only at run time)


def tally_scope(eval_set_id: int | None) -> int:
    """The tallies' scope: 0 for preference rating, else the evaluation set's id."""
    return 0 if eval_set_id is None else eval_set_id


def _teachers_ratings(table, eval_set_id: int | None, item_ids) -> list:
    """The teachers' ratings of the scope (None: preference rating), of these items (a list, a bound parameter, or
    None: all)."""
    c = table.c
    return [*([] if item_ids is None else [c.item_id.in_(item_ids)]),
            c.eval_set_id.is_(None) if eval_set_id is None else c.eval_set_id == eval_set_id,
            c.rater_id.in_(select(col(RaterRecord.id)).where(col(RaterRecord.kind) == RaterKind.human))]


def _ones(condition):
    return case((condition, 1), else_=0)


def _teacher_rows(eval_set_id, item_ids):
    """Per teacher and item: ratings, accepts, the time on the item, ratings beyond K, the last save, and the other
    teachers' labels beside this teacher's on the same distractors (each distractor's accepts `a` of `n` labels,
    less the teacher's own). `eval_set_id` and `item_ids` may be bound parameters."""
    other, r = _RATING.alias("other"), _RATING.alias("r")
    labels = (select(other.c.distractor_id, func.count().label("n"), func.sum(_ones(other.c.accepted)).label("a"))
              .where(*_teachers_ratings(other, eval_set_id, item_ids)).group_by(other.c.distractor_id)
              .subquery("labels"))
    a, n, mine = labels.c.a, labels.c.n, r.c.accepted
    return (select(_scope_of(eval_set_id), r.c.item_id, r.c.rater_id, func.count(),
                   func.sum(_ones(mine)), func.max(r.c.seconds), func.sum(_ones(r.c.beyond_k)),
                   func.max(r.c.updated_at),
                   func.sum(case((mine, a - 1), else_=0)), func.sum(case((mine, n - a), else_=0)),
                   func.sum(case((mine, 0), else_=a)), func.sum(case((mine, 0), else_=n - a - 1)))
            .join(labels, labels.c.distractor_id == r.c.distractor_id)
            .where(*_teachers_ratings(r, eval_set_id, item_ids)).group_by(r.c.item_id, r.c.rater_id))


def _source_rows(eval_set_id, item_ids):
    r = _RATING.alias("r")
    return (select(_scope_of(eval_set_id), r.c.item_id, col(Distractor.source), func.count(),
                   func.sum(_ones(r.c.accepted)))
            .join(Distractor, col(Distractor.id) == r.c.distractor_id)
            .where(*_teachers_ratings(r, eval_set_id, item_ids)).group_by(r.c.item_id, col(Distractor.source)))


def _scope_of(eval_set_id):
    """The scope column's value: 0 for preference rating, else the evaluation set's id (maybe a bound parameter)."""
    if eval_set_id is None:
        return literal(0, Integer)
    return literal(eval_set_id, Integer) if isinstance(eval_set_id, int) else cast(eval_set_id, Integer)


_TEACHER_COLUMNS = ["scope", "item_id", "rater_id", "rated", "accepted", "seconds", "beyond", "updated_at",
                    "agree_accept", "accept_reject", "reject_accept", "agree_reject"]
_SOURCE_COLUMNS = ["scope", "item_id", "source", "rated", "accepted"]
_UPSERTS: dict[tuple[str, bool], tuple[Any, ...]] = {}


def _upserts(session: Session, preference: bool) -> tuple[Any, ...]:
    """The two upserts of a scope's items, built once per backend and kind of scope, their parameters (`items`,
    `set_id`) bound at each call: a busy server's saves reuse the compiled statements instead of building them. On
    PostgreSQL they are one statement (the teachers' upsert in a WITH): a round trip less for every save."""
    dialect = session.get_bind().dialect.name
    key = (dialect, preference)
    if key not in _UPSERTS:
        set_id = None if preference else bindparam("set_id", type_=Integer)
        items: Any = bindparam("items", expanding=True)
        teachers = _upsert(session, TeacherTally, _TEACHER_COLUMNS, 3, _teacher_rows(set_id, items))
        sources = _upsert(session, SourceTally, _SOURCE_COLUMNS, 3, _source_rows(set_id, items))
        _UPSERTS[key] = ((sources.add_cte(teachers.cte("teacher_tallies")),) if dialect == "postgresql"
                         else (teachers, sources))
    return _UPSERTS[key]


def _upsert(session: Session, table, columns: list[str], key: int, rows) -> Any:
    """INSERT `rows` (a select of `columns`, the first `key` of them the primary key), replacing rows there."""
    statement = dialect_insert(session, table.__table__).from_select(columns, rows)
    return statement.on_conflict_do_update(index_elements=columns[:key],
                                           set_={name: statement.excluded[name] for name in columns[key:]})


def retally(session: Session, items: Mapping[int | None, Iterable[int]], locked: Iterable[int] = ()) -> None:
    """Count the tallies of these items again from their ratings, by scope (an evaluation set's id, None for
    preference rating), in the caller's transaction after its ratings are written: two upserts per scope (a
    teacher's tally never goes away, as teachers' ratings are never deleted).

    On PostgreSQL the items' rows are locked first, so two saves of one item count one after the other and the
    second sees the first's ratings: in id order, so two saves never lock crosswise, and FOR NO KEY UPDATE (what an
    UPDATE of the row takes) because the ratings' inserts already hold the rows' key share, which FOR UPDATE would
    wait on. `locked`: items the caller's transaction has already locked that way (`recount_need`)."""
    wanted = {eval_set_id: sorted(set(ids)) for eval_set_id, ids in items.items()}
    session.flush()  # ratings replaced through the ORM
    if session.get_bind().dialect.name == "postgresql":
        for chunk in in_chunks(sorted(set().union(*wanted.values()) - set(locked))):
            session.execute(select(col(Item.id)).where(col(Item.id).in_(chunk)).order_by(col(Item.id))
                            .with_for_update(key_share=True))
    for eval_set_id, ids in wanted.items():
        for statement in _upserts(session, eval_set_id is None):
            for chunk in in_chunks(ids):
                session.execute(statement, {"items": chunk, "set_id": eval_set_id})


def retally_all(session: Session) -> None:
    """Count every tally again from the ratings, in the caller's transaction: for ratings written around the save
    path (a bulk load). One pass per scope, with no list of items."""
    session.flush()
    session.execute(delete(TeacherTally).execution_options(synchronize_session=False))
    session.execute(delete(SourceTally).execution_options(synchronize_session=False))
    for eval_set_id in [None, *session.execute(select(col(EvalSet.id)).order_by(col(EvalSet.id))).scalars()]:
        session.execute(insert(TeacherTally).from_select(_TEACHER_COLUMNS, _teacher_rows(eval_set_id, None)))
        session.execute(insert(SourceTally).from_select(_SOURCE_COLUMNS, _source_rows(eval_set_id, None)))


_KINDS: "weakref.WeakKeyDictionary[Any, dict[int, bool]]" = weakref.WeakKeyDictionary()  # engine -> rater id -> a
#   teacher? (a rater's kind never changes)


def is_teacher(session: Session, rater_id: int) -> bool:
    """Whether the rater is a teacher: only teachers' ratings are tallied. Asked once per rater and database."""
    kinds = _KINDS.setdefault(session.get_bind().engine, {})
    if rater_id not in kinds:
        rater = session.get(RaterRecord, rater_id)
        if rater is None:
            return False
        kinds[rater_id] = rater.kind == RaterKind.human
    return kinds[rater_id]
