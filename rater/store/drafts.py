"""Teachers' drafts: the ticks and reasons of an item on screen that is not saved yet, kept per teacher, item and
scope so that Esc, a crash, a reload or a closed tab loses nothing; deleted when the item is saved."""

import json
from typing import Any, Iterable

from sqlalchemy import Integer, String, bindparam, delete, select
from sqlmodel import Session, col

from rater.core.domain import DistractorView, ItemView
from rater.store.engine import built
from rater.store.items import ItemFilter, in_chunks
from rater.store.tables import Context, Distractor, Draft, Item, draft_scope, utcnow

Marks = dict[int, tuple[bool, str | None]]  # {distractor id: (ticked, rejection reason)}


def save_draft(session: Session, *, rater_id: int, item_id: int, eval_set_id: int | None, marks: Marks) -> None:
    """Keep `marks` as the draft of this item (an empty one removes the draft)."""
    delete_drafts(session, rater_id=rater_id, eval_set_id=eval_set_id, item_ids=[item_id])
    if marks:
        session.add(Draft(rater_id=rater_id, item_id=item_id, scope=draft_scope(eval_set_id), updated_at=utcnow(),
                          marks=json.dumps({str(d): [ticked, reason] for d, (ticked, reason) in marks.items()})))


def load_drafts(session: Session, *, rater_id: int, eval_set_id: int | None, item_ids: Iterable[int]) -> dict[int, Marks]:
    """The drafts of these items, by item id."""
    found: dict[int, Marks] = {}
    statement = built(("drafts",), lambda: select(col(Draft.item_id), col(Draft.marks)).where(*_OWN))
    for chunk in in_chunks(item_ids):
        for item_id, marks in session.execute(statement, own_drafts(rater_id, eval_set_id, chunk)):
            found[item_id] = _marks(marks)
    return found


def _marks(stored: str) -> Marks:
    return {int(d): (bool(ticked), reason) for d, (ticked, reason) in json.loads(stored).items()}


def item_and_draft(session: Session, *, item_id: int, rater_id: int, eval_set_id: int | None,
                   where: ItemFilter) -> tuple[ItemView | None, Marks]:
    """An item with its distractors (those `where` selects), and this teacher's draft of it, in one statement: what
    a claim shows next, in one round trip instead of three on a busy server. (None, {}) when it has none."""
    statement = built(("item and draft", where), lambda: select(
        col(Item.id), col(Context.text), col(Item.question), col(Item.answer), col(Item.uncertainty),
        col(Distractor.id), col(Distractor.text), col(Distractor.source),
        select(col(Draft.marks)).where(col(Draft.rater_id) == bindparam("rater_id", type_=Integer),
                                       col(Draft.scope) == bindparam("scope", type_=String),
                                       col(Draft.item_id) == col(Item.id)).scalar_subquery())
        .join(Context, col(Context.id) == col(Item.context_id)).join(Distractor, col(Distractor.item_id) == col(Item.id))
        .where(col(Item.id) == bindparam("item_id", type_=Integer), *where.distractor_clauses())
        .order_by(col(Distractor.source), col(Distractor.position), col(Distractor.id)))
    rows = session.execute(statement, {"item_id": item_id, "rater_id": rater_id,
                                       "scope": draft_scope(eval_set_id)}).all()
    if not rows:
        return None, {}
    first = rows[0]
    view = ItemView(first[0], first[1], first[2], first[3], tuple(DistractorView(r[5], r[6], r[7]) for r in rows),
                    uncertainty=first[4])
    return view, _marks(first[8]) if first[8] else {}


def delete_drafts(session: Session, *, rater_id: int, eval_set_id: int | None, item_ids: Iterable[int]) -> None:
    statement = built(("drafts gone",), lambda: drafts_gone().execution_options(synchronize_session=False))
    for chunk in in_chunks(item_ids):
        session.execute(statement, own_drafts(rater_id, eval_set_id, chunk))


def drafts_gone() -> Any:
    """A DELETE of one teacher's drafts of some items in one scope; its parameters come from `own_drafts`."""
    return delete(Draft).where(*_OWN)


_OWN = (col(Draft.rater_id) == bindparam("rater_id", type_=Integer), col(Draft.scope) == bindparam("scope", type_=String),
        col(Draft.item_id).in_(bindparam("item_ids", expanding=True)))


def own_drafts(rater_id: int, eval_set_id: int | None, item_ids: list[int]) -> dict:
    return {"rater_id": rater_id, "scope": draft_scope(eval_set_id), "item_ids": item_ids}
