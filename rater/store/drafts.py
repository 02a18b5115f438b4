"""Teachers' drafts: the ticks and reasons of an item on screen that is not saved yet, kept per teacher, item and
scope so that Esc, a crash, a reload or a closed tab loses nothing; deleted when the item is saved."""

import json
from typing import Iterable

from sqlalchemy import Integer, String, bindparam, delete, select
from sqlmodel import Session, col

from rater.store.engine import built
from rater.store.items import in_chunks
from rater.store.tables import Draft, draft_scope, utcnow

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
        for item_id, marks in session.execute(statement, _own(rater_id, eval_set_id, chunk)):
            found[item_id] = {int(d): (bool(ticked), reason) for d, (ticked, reason) in json.loads(marks).items()}
    return found


def delete_drafts(session: Session, *, rater_id: int, eval_set_id: int | None, item_ids: Iterable[int]) -> None:
    statement = built(("drafts gone",), lambda: delete(Draft).where(*_OWN)
                      .execution_options(synchronize_session=False))
    for chunk in in_chunks(item_ids):
        session.execute(statement, _own(rater_id, eval_set_id, chunk))


_OWN = (col(Draft.rater_id) == bindparam("rater_id", type_=Integer), col(Draft.scope) == bindparam("scope", type_=String),
        col(Draft.item_id).in_(bindparam("item_ids", expanding=True)))


def _own(rater_id: int, eval_set_id: int | None, item_ids: list[int]) -> dict:
    return {"rater_id": rater_id, "scope": draft_scope(eval_set_id), "item_ids": item_ids}
