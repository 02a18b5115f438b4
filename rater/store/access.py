"""Teachers' personal links for the browser screen (`rater serve`): a secret token per teacher, of which only
its SHA-256 hash is stored (the token has 192 random bits, so a plain hash cannot be reversed by guessing). The
token decides the rater name, so nobody can rate as somebody else."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, bindparam, select, update
from sqlmodel import Session, col

from rater.core.domain import RaterKind
from rater.core.errors import InputError
from rater.store.engine import built
from rater.store.ratings import get_or_create_rater
from rater.store.tables import RaterRecord, TeacherAccess, saved_id, utcnow

NAME_LENGTH = 64


def check_teacher_name(name: str) -> None:
    """A teacher's name is what every rating carries: not empty, printable, at most 64 characters."""
    if not name.strip():
        raise InputError("A teacher's name cannot be empty.", "pass --as NAME (or teachers add NAME) with a name")
    if not name.isprintable() or name != name.strip():
        raise InputError(f"The teacher name {name!r} has characters that cannot be shown (or spaces at its ends).",
                         "use letters, digits, spaces inside, dots or dashes")
    if len(name) > NAME_LENGTH:
        raise InputError(f"The teacher name is {len(name)} characters long; at most {NAME_LENGTH} are allowed.",
                         "pass a shorter name")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_teacher(session: Session, *, name: str, organizer: bool = False) -> str:
    """A new secret token for teacher `name` (registered as a teacher); shown once, stored only as a hash. An
    organizer's link opens the study's status page and never a rating page."""
    check_teacher_name(name)
    rater = get_or_create_rater(session, name=name, kind=RaterKind.human)
    active = session.execute(select(col(TeacherAccess.id)).where(col(TeacherAccess.rater_id) == rater.id,
                                                            col(TeacherAccess.revoked_at).is_(None))).first()
    if active:
        raise InputError(f"{name} already has a link.",
                         f"to give {name} a new one: `rater teachers revoke {name}`, then `rater teachers add {name}`")
    token = secrets.token_urlsafe(24)
    session.add(TeacherAccess(rater_id=saved_id(rater), token_sha256=token_hash(token), organizer=organizer))
    return token


def revoke_teacher(session: Session, *, name: str) -> int:
    """Revoke every active link of `name`; how many there were."""
    rater_ids = select(col(RaterRecord.id)).where(col(RaterRecord.name) == name)
    revoked = session.execute(update(TeacherAccess).where(col(TeacherAccess.rater_id).in_(rater_ids),
                                                          col(TeacherAccess.revoked_at).is_(None))
                              .values(revoked_at=utcnow()).returning(col(TeacherAccess.id))).all()
    if not revoked:
        raise InputError(f"{name} has no active link.", "`rater teachers list` shows who has one")
    return len(revoked)


def teacher_for_token(session: Session, token: str | None, *, organizer: bool = False) -> str | None:
    """The name for a valid, unrevoked token of a teacher (or, with `organizer`, of an organizer); None for anything
    else, so an organizer's link rates nothing and a teacher's link never opens the organizer's page."""
    if not token or len(token) > 200:
        return None
    statement = built(("teacher for token", organizer), lambda: select(col(RaterRecord.name))
                      .join(TeacherAccess, col(TeacherAccess.rater_id) == col(RaterRecord.id))
                      .where(col(TeacherAccess.token_sha256) == bindparam("hash", type_=String),
                             col(TeacherAccess.revoked_at).is_(None), col(TeacherAccess.organizer).is_(organizer)))
    return session.execute(statement, {"hash": token_hash(token)}).scalar()


@dataclass(frozen=True)
class TeacherLink:
    name: str
    created_at: datetime
    revoked_at: datetime | None
    organizer: bool = False


def list_teachers(session: Session) -> list[TeacherLink]:
    rows = session.execute(select(col(RaterRecord.name), col(TeacherAccess.created_at), col(TeacherAccess.revoked_at),
                                  col(TeacherAccess.organizer))
                           .join(TeacherAccess, col(TeacherAccess.rater_id) == col(RaterRecord.id))
                           .order_by(col(RaterRecord.name), col(TeacherAccess.created_at))).all()
    return [TeacherLink(*row) for row in rows]
