"""How unsure the judges are about each item, so `--order uncertain` shows teachers those items first (active
learning: teacher time where the judges are least sure). Per distractor, the largest of:

- closeness to where acceptance begins (half a score step above the limit): 1 - |score - (limit + 0.25)| / 2, for
  every judge that gave a score and limit;
- 1 when the judges and rules that rated it disagree (one accepts, another rejects);
- 1 when a judge decided it differently in different orders (position bias, `rater judge --orders`).

An item's uncertainty is its most uncertain distractor's; items no judge rated have none (they come after)."""

from collections import defaultdict

from sqlalchemy import bindparam, select, update
from sqlmodel import Session, col

from rater.core.domain import RaterKind
from rater.evaluation.consistency import order_disagreements
from rater.store.tables import Item, RaterRecord, Rating, rating_scope

NOT_RANDOM = ("teachers have been shown items in the judges' uncertainty order (--order uncertain), so their labels "
              "are not a random sample of the source: these intervals assume one and may miss the truth; for "
              "estimates, have teachers rate a random sample (`rater rate --order random`)")


def closeness(score: float, limit: float) -> float:
    """How near a score is to where acceptance begins: 1 there, 0 two points or more away. Scores come in steps of
    0.5 and a score equal to the limit is rejected, so acceptance begins half a step above the limit: a score of
    1 under a limit of 1 is a clear rejection (0.875), not a coin toss."""
    return max(0.0, 1.0 - abs(score - (limit + 0.25)) / 2)


def item_uncertainty(session: Session) -> dict[int, float]:
    judges = dict(session.execute(select(col(RaterRecord.id), col(RaterRecord.kind))
                                  .where(col(RaterRecord.kind).in_([RaterKind.llm, RaterKind.rule]))).all())
    if not judges:
        return {}
    per_distractor: dict[int, float] = defaultdict(float)
    decided: dict[int, set[bool]] = defaultdict(set)
    item_of: dict[int, int] = {}
    for distractor_id, item_id, accepted, score, limit in session.execute(
            select(col(Rating.distractor_id), col(Rating.item_id), col(Rating.accepted), col(Rating.score),
                   col(Rating.limit)).where(rating_scope(None), col(Rating.rater_id).in_(list(judges)))):
        item_of[distractor_id] = item_id
        decided[distractor_id].add(bool(accepted))
        if score is not None and limit is not None:
            per_distractor[distractor_id] = max(per_distractor[distractor_id], closeness(score, limit))
    moved = set().union(*(order_disagreements(session, r) for r, kind in judges.items() if kind == RaterKind.llm))
    for distractor_id, decisions in decided.items():
        if len(decisions) > 1 or distractor_id in moved:
            per_distractor[distractor_id] = 1.0
    items: dict[int, float] = {}
    for distractor_id, item_id in item_of.items():
        items[item_id] = max(items.get(item_id, 0.0), per_distractor[distractor_id])
    return items


def refresh_uncertainty(session: Session) -> int:
    """Store each item's uncertainty (None where no judge rated it); how many items have one."""
    values = item_uncertainty(session)
    session.execute(update(Item).values(uncertainty=None))
    if values:
        session.connection().execute(
            update(Item.__table__).where(Item.__table__.c.id == bindparam("item_id"))  # type: ignore[attr-defined]
            .values(uncertainty=bindparam("value")), [{"item_id": i, "value": v} for i, v in values.items()])
    return len(values)
