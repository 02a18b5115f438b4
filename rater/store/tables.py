"""SQLModel tables: contexts, items, distractors, raters, ratings, their history and evaluation sets."""

from datetime import datetime, timezone
from enum import StrEnum

from sqlalchemy import ColumnElement, Index, Text, UniqueConstraint, false, literal_column
from sqlmodel import Field, SQLModel, col


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def saved_id(record: SQLModel) -> int:
    """The id of a record that is in the database (flushed); SQLModel types every `id` as `int | None`."""
    found = getattr(record, "id", None)
    if found is None:
        raise ValueError(f"{type(record).__name__} has no id yet: flush it first")
    return found


class Split(StrEnum):
    train = "train"
    dev = "dev"
    test = "test"
    excluded = "excluded"  # dropped by `rater split` (context too long)


class ContextBase(SQLModel):
    text: str = Field(sa_type=Text)


class Context(ContextBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # A hash, not the text, carries the uniqueness: long texts cannot be unique keys on every backend.
    sha256: str = Field(max_length=64, unique=True)


NEED_UNKNOWN = 1_000_000


class ItemBase(SQLModel):
    question: str = Field(sa_type=Text)
    answer: str = Field(sa_type=Text)
    split: str | None = Field(default=None, max_length=16, index=True)
    dataset: str = Field(max_length=200, index=True)
    record: str = Field(max_length=200)


class Item(ItemBase, table=True):
    __table_args__ = (UniqueConstraint("key", name="uq_item_key"),)
    id: int | None = Field(default=None, primary_key=True)
    context_id: int = Field(foreign_key="context.id", index=True)
    # sha256 of (context, question, answer): the same question imported twice is one item.
    key: str = Field(max_length=64)
    # Preference rating's teachers still needed under the study's K (`Study.recount`), so a claim finds the items
    # that need someone through a partial index instead of counting ratings of every finished item. NEED_UNKNOWN
    # (new items, no K) means "look": the claim always counts again before it takes an item.
    need: int = Field(default=NEED_UNKNOWN, sa_column_kwargs={"server_default": str(NEED_UNKNOWN)})
    # How unsure the judges are about the item, 0-1 (None: no judge rated it); `rater rate --order uncertain`.
    uncertainty: float | None = None
    # The split the item came with from its file (None: none), kept when `rater split` excludes the item for its
    # length, so a later split that lets it back in gives it back its own split.
    file_split: str | None = Field(default=None, max_length=16)


class DistractorBase(SQLModel):
    text: str = Field(sa_type=Text)
    source: str = Field(max_length=200, index=True)
    position: int = 0


class Distractor(DistractorBase, table=True):
    __table_args__ = (UniqueConstraint("item_id", "source", "key", name="uq_distractor"),)
    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    key: str = Field(max_length=64)  # sha256 of the text


class RaterRecordBase(SQLModel):
    name: str = Field(max_length=200, unique=True)
    kind: str = Field(max_length=16)
    settings: str = Field(default="{}", sa_type=Text)


class RaterRecord(RaterRecordBase, table=True):
    """A rater's row (table `rater`): its name, kind and settings. `Rater` is the interface (rater/raters/base.py)."""

    __tablename__ = "rater"
    id: int | None = Field(default=None, primary_key=True)


class RatingBase(SQLModel):
    accepted: bool
    score: float | None = None
    limit: float | None = None
    reason: str | None = Field(default=None, max_length=200)
    rationale: str | None = Field(default=None, sa_type=Text)
    shown_position: int | None = None  # where the option stood on the rater's screen (0: first), for position effects
    seconds: float | None = None  # a teacher: how long the item was on screen before this save
    beyond_k: bool = Field(default=False, sa_column_kwargs={"server_default": false()})  # saved after the item had
    #   its K teachers, by a teacher whose hold on it had lapsed: kept, and counted apart


class Rating(RatingBase, table=True):
    """The current rating of one distractor by one rater, in preference rating (`eval_set_id` empty) or in one
    blind evaluation set, which collects judgements of its own. Re-rating replaces it (history in RatingHistory)."""

    id: int | None = Field(default=None, primary_key=True)
    distractor_id: int = Field(foreign_key="distractor.id")
    rater_id: int = Field(foreign_key="rater.id", index=True)
    item_id: int = Field(foreign_key="item.id")
    eval_set_id: int | None = Field(default=None, foreign_key="eval_set.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    revision: int = Field(default=1, sa_column_kwargs={"server_default": "1"})  # how many times this rater has rated this distractor


def rating_scope(eval_set_id: int | None) -> ColumnElement[bool]:
    """The condition that selects one scope's ratings: preference rating (None) or one evaluation set."""
    return col(Rating.eval_set_id).is_(None) if eval_set_id is None else col(Rating.eval_set_id) == eval_set_id


class RatingHistory(RatingBase, table=True):
    """A rating as it was before a re-rating replaced it."""

    __tablename__ = "rating_history"
    id: int | None = Field(default=None, primary_key=True)
    rating_id: int = Field(foreign_key="rating.id", index=True)
    revision: int
    rated_at: datetime
    replaced_at: datetime = Field(default_factory=utcnow)


class EvalSet(SQLModel, table=True):
    __tablename__ = "eval_set"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    params: str = Field(default="{}", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow)
    overlap: int | None = None  # work shared out: each item goes to teachers until this many have rated it


class EvalSlot(SQLModel, table=True):
    """One distractor at a fixed place of an evaluation set, shared by every rater."""

    __tablename__ = "eval_slot"
    __table_args__ = (UniqueConstraint("eval_set_id", "position", "slot", name="uq_eval_slot"),)
    id: int | None = Field(default=None, primary_key=True)
    eval_set_id: int = Field(foreign_key="eval_set.id", index=True)
    position: int  # the item's place in the set
    slot: int  # the distractor's place within the item
    item_id: int = Field(foreign_key="item.id")
    distractor_id: int = Field(foreign_key="distractor.id")


_RATING = Rating.__table__.c  # type: ignore[attr-defined]  # (SQLModel declares __table__ only at run time)
Index("ix_rating_rater_item", _RATING.rater_id, _RATING.item_id)
Index("ix_rating_item", _RATING.item_id, _RATING.rater_id)  # one item's ratings (browse, the rating screen)
# One current rating per distractor and rater in each scope: preference rating, and each evaluation set.
_PREFERENCE = _RATING.eval_set_id.is_(None)
_EVALUATION = _RATING.eval_set_id.is_not(None)
Index("uq_rating_preference", _RATING.distractor_id, _RATING.rater_id, unique=True,
      sqlite_where=_PREFERENCE, postgresql_where=_PREFERENCE)
Index("uq_rating_evaluation", _RATING.distractor_id, _RATING.rater_id, _RATING.eval_set_id, unique=True,
      sqlite_where=_EVALUATION, postgresql_where=_EVALUATION)
_ITEM = Item.__table__.c  # type: ignore[attr-defined]
_NEEDED = _ITEM.need > literal_column("0")  # a literal: SQLite uses a partial index only for the same text
Index("ix_item_needed", _ITEM.id, sqlite_where=_NEEDED, postgresql_where=_NEEDED)
_DISTRACTOR = Distractor.__table__.c  # type: ignore[attr-defined]
Index("ix_distractor_item_source", _DISTRACTOR.item_id, _DISTRACTOR.source)


class JudgeRequest(SQLModel, table=True):
    """One request to an LLM judge: its cache key, outcome, raw answer, usage and latency. Never the API key."""

    __tablename__ = "judge_request"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, index=True)  # hash of model, messages and parameters
    rater_id: int = Field(foreign_key="rater.id", index=True)
    item_id: int = Field(foreign_key="item.id")
    model: str = Field(max_length=200)
    status: str = Field(max_length=16)  # ok | parse_error | failed | cached (answered from an earlier row)
    response: str | None = Field(default=None, sa_type=Text)
    rationale: str | None = Field(default=None, sa_type=Text)
    scores: str | None = Field(default=None, sa_type=Text)  # JSON list, in the order sent
    order: str | None = Field(default=None, sa_type=Text)  # JSON list of distractor ids, in the order sent
    error: str | None = Field(default=None, sa_type=Text)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: int = 0
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class Lease(SQLModel, table=True):
    """An item a teacher has open while work is shared out with an overlap: it counts towards the item's teachers
    until it is rated, released or expires."""

    __tablename__ = "lease"
    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    rater_id: int = Field(foreign_key="rater.id", index=True)
    eval_set_id: int | None = Field(default=None, foreign_key="eval_set.id")
    expires_at: datetime
    created_at: datetime = Field(default_factory=utcnow)


class Draft(SQLModel, table=True):
    """A teacher's ticks and reasons of an item not yet saved (left with Esc, a crash, a reload or a closed tab):
    restored when the item comes back, deleted when it is saved. `scope` is "preference" or "set:ID"."""

    __table_args__ = (UniqueConstraint("rater_id", "item_id", "scope", name="uq_draft"),)
    id: int | None = Field(default=None, primary_key=True)
    rater_id: int = Field(foreign_key="rater.id")
    item_id: int = Field(foreign_key="item.id")
    scope: str = Field(max_length=32)
    marks: str = Field(sa_type=Text)  # JSON {distractor id: [accepted, reason]}
    updated_at: datetime = Field(default_factory=utcnow)


class Flag(SQLModel, table=True):
    """A teacher's word that an item itself is broken (a wrong answer, a typo in the question), with an optional
    note; flagging again replaces the note. Items flagged by a majority of their teachers stay out of exports."""

    __table_args__ = (UniqueConstraint("rater_id", "item_id", name="uq_flag"),)
    id: int | None = Field(default=None, primary_key=True)
    rater_id: int = Field(foreign_key="rater.id")
    item_id: int = Field(foreign_key="item.id")
    note: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow)


def draft_scope(eval_set_id: int | None) -> str:
    return "preference" if eval_set_id is None else f"set:{eval_set_id}"


class TeacherTally(SQLModel, table=True):
    """One teacher's ratings of one item in one scope (0: preference rating, else the evaluation set's id), summed:
    what the organizer's status counts from, kept by every save in its transaction (rater.store.tally). The pair
    counts are the labels the other teachers gave the same distractors beside this teacher's: `agree_accept` accepts
    beside an accept, `accept_reject` rejects beside an accept, `reject_accept` and `agree_reject` likewise."""

    __tablename__ = "teacher_tally"
    scope: int = Field(primary_key=True)
    item_id: int = Field(primary_key=True, foreign_key="item.id")
    rater_id: int = Field(primary_key=True, foreign_key="rater.id")
    rated: int
    accepted: int
    seconds: float | None = None  # the longest time on the item of its ratings
    beyond: int  # ratings saved beyond K
    updated_at: datetime
    agree_accept: int
    accept_reject: int
    reject_accept: int
    agree_reject: int


class SourceTally(SQLModel, table=True):
    """The teachers' ratings of one item's distractors from one source in one scope, summed (see TeacherTally)."""

    __tablename__ = "source_tally"
    scope: int = Field(primary_key=True)
    item_id: int = Field(primary_key=True, foreign_key="item.id")
    source: str = Field(primary_key=True, max_length=200)
    rated: int
    accepted: int


class StudySetting(SQLModel, table=True):
    """A rule every teacher of the database follows, such as preference rating's overlap."""

    __tablename__ = "study_setting"
    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_type=Text)


class TeacherAccess(SQLModel, table=True):
    """A teacher's personal link for `rater serve`: only a hash of its secret token is stored."""

    __tablename__ = "teacher_access"
    id: int | None = Field(default=None, primary_key=True)
    rater_id: int = Field(foreign_key="rater.id", index=True)
    token_sha256: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    organizer: bool = Field(default=False, sa_column_kwargs={"server_default": false()})  # opens /study, not rating
