"""How unsure the judges are about each item, so `--order uncertain` shows teachers those items first (active
learning: teacher time where the judges are least sure). Per distractor, the largest of:

- closeness to where acceptance begins (half a score step above the limit): 1 - |score - (limit + 0.25)| / 2, for
  every judge that gave a score and limit;
- 1 when the judges and rules that rated it disagree (one accepts, another rejects);
- 1 when a judge decided it differently in different orders (position bias, `rater judge --orders`);
- 1 when the teachers' labels so far do not settle how the judge's score should be read: acceptance rules fitted
  the way `rater calibrate` fits them, each to a resample of the teachers' labels drawn item by item, disagree about
  it (a committee of calibrations, "query by committee"). Once teachers have rated some of what a judge scored,
  this asks them about the distractors on which its calibration still hangs, wherever they lie: early on, when the
  fits differ widely, across the whole score range; later near the limit.

An item's uncertainty counts its unsettled distractors (those at 1) and adds the closeness of its nearest other one
(below 1): items with more unsettled distractors first, then those nearest the limit; items no judge rated have none
(they come after)."""

import random
from collections import defaultdict
from typing import Sequence

from sqlalchemy import bindparam, select, update
from sqlmodel import Session, col

from rater.core.domain import RaterKind
from rater.evaluation.calibration import Case, Population, best_rule, load_cases
from rater.evaluation.consistency import order_disagreements
from rater.judge.scoring import Acceptance
from rater.store.tables import Item, RaterRecord, Rating, rating_scope

NOT_RANDOM = ("teachers have been shown items in the judges' uncertainty order (--order uncertain), so their labels "
              "are not a random sample of the source: these intervals assume one and may miss the truth; for "
              "estimates, have teachers rate a random sample (`rater rate --order random`)")


def closeness(score: float, limit: float) -> float:
    """How near a score is to where acceptance begins: 1 there, 0 two points or more away. Scores come in steps of
    0.5 and a score equal to the limit is rejected, so acceptance begins half a step above the limit: a score of
    1 under a limit of 1 is a clear rejection (0.875), not a coin toss."""
    return max(0.0, 1.0 - abs(score - (limit + 0.25)) / 2)


COMMITTEE = 6  # calibrations fitted to resamples


def committee(cases: Sequence[Case], population: Population | None = None, members: int = COMMITTEE, seed: int = 0,
              rules: Sequence[Acceptance] | None = None) -> list[Acceptance]:
    """Acceptance rules fitted as `rater calibrate` fits them (`best_rule`), each to the teachers' labels of items
    drawn with replacement from those they rated; none before the teachers have rated two items and given both
    labels."""
    by_item: dict[int, list[Case]] = defaultdict(list)
    for case in cases:
        by_item[case.item_id].append(case)
    items = sorted(by_item)
    if len(items) < 2 or len({c.truth for c in cases}) < 2:
        return []
    rng = random.Random(seed)
    fitted = []
    for _ in range(members):
        sample = [c for item in (rng.choice(items) for _ in items) for c in by_item[item]]
        if len({c.truth for c in sample}) == 2:
            fitted.append(best_rule(sample, population, rules)[0])
    return fitted


def distractor_uncertainty(score: float, limit: float, item_scores: Sequence[float],
                           fitted: Sequence[Acceptance] = ()) -> float:
    """1 when the committee's rules split on the distractor, else its closeness to the limit: the committee's
    (the one its rules agree on, nearer the teachers than a calibration not yet saved) or the judge's own."""
    scores = list(item_scores)
    limits = [rule.limit(scores) for rule in fitted]
    accepted = sum(score > each for each in limits)
    if 0 < accepted < len(limits):
        return 1.0
    return max(closeness(score, each) for each in limits) if limits else closeness(score, limit)


def _judges(session: Session) -> dict[int, RaterKind]:
    return dict(session.execute(select(col(RaterRecord.id), col(RaterRecord.kind))
                                .where(col(RaterRecord.kind).in_([RaterKind.llm, RaterKind.rule]))).all())


def committees(session: Session) -> dict[str, tuple[int, list[Acceptance]]]:
    """Per LLM judge (by name) whose scores teachers have rated some of: its id and its committee of calibrations."""
    llm = dict(session.execute(select(col(RaterRecord.name), col(RaterRecord.id))
                               .where(col(RaterRecord.kind) == RaterKind.llm)).all())
    teachers = list(session.execute(select(col(RaterRecord.name)).where(col(RaterRecord.kind) == RaterKind.human))
                    .scalars())
    found = {}
    for name, rater_id in sorted(llm.items()) if teachers else ():
        cases = load_cases(session, judge=name, against=teachers)
        if fitted := committee(cases.cases, cases.population):
            found[name] = (rater_id, fitted)
    return found


def item_uncertainty(session: Session,
                     fitted: dict[str, tuple[int, list[Acceptance]]] | None = None) -> dict[int, float]:
    """Each judged item's uncertainty; `fitted`: the committees (default: fitted here)."""
    judges = _judges(session)
    if not judges:
        return {}
    per_distractor: dict[int, float] = defaultdict(float)
    decided: dict[int, set[bool]] = defaultdict(set)
    item_of: dict[int, int] = {}
    by_judge = {rater_id: rules for rater_id, rules in (committees(session) if fitted is None else fitted).values()}
    ratings = session.execute(select(col(Rating.distractor_id), col(Rating.item_id), col(Rating.rater_id),
                                     col(Rating.accepted), col(Rating.score), col(Rating.limit))
                              .where(rating_scope(None), col(Rating.rater_id).in_(list(judges)))).all()
    item_scores: dict[tuple[int, int], list[float]] = defaultdict(list)  # (judge, item) -> its scores
    for _, item_id, rater_id, _, score, _ in ratings:
        if score is not None:
            item_scores[rater_id, item_id].append(score)
    for distractor_id, item_id, rater_id, accepted, score, limit in ratings:
        item_of[distractor_id] = item_id
        decided[distractor_id].add(bool(accepted))
        if score is not None and limit is not None:
            value = distractor_uncertainty(score, limit, item_scores[rater_id, item_id], by_judge.get(rater_id, ()))
            per_distractor[distractor_id] = max(per_distractor[distractor_id], value)
    moved = set().union(*(order_disagreements(session, r) for r, kind in judges.items() if kind == RaterKind.llm))
    for distractor_id, decisions in decided.items():
        if len(decisions) > 1 or distractor_id in moved:
            per_distractor[distractor_id] = 1.0
    by_item: dict[int, list[float]] = defaultdict(list)
    for distractor_id, item_id in item_of.items():
        by_item[item_id].append(per_distractor[distractor_id])
    return {item_id: item_priority(values) for item_id, values in by_item.items()}


def item_priority(values: Sequence[float]) -> float:
    """An item's uncertainty from its distractors': how many are unsettled (1), plus the largest of the others."""
    return sum(v >= 1.0 for v in values) + max((v for v in values if v < 1.0), default=0.0)


def refresh_uncertainty(session: Session) -> tuple[int, list[str]]:
    """Store each item's uncertainty (None where no judge rated it); how many items have one, and the judges whose
    committee of calibrations took part."""
    fitted = committees(session)
    values = item_uncertainty(session, fitted)
    session.execute(update(Item).values(uncertainty=None))
    if values:
        session.connection().execute(
            update(Item.__table__).where(Item.__table__.c.id == bindparam("item_id"))  # type: ignore[attr-defined]
            .values(uncertainty=bindparam("value")), [{"item_id": i, "value": v} for i, v in values.items()])
    return len(values), sorted(fitted)
