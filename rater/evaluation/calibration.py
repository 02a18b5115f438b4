"""Calibrating an LLM judge's acceptance rule against teachers: grid search, cross-validated by item."""

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import select
from sqlmodel import Session

from rater.core.errors import InputError
from rater.evaluation.agreement import cohen_kappa, precision_recall
from rater.evaluation.report import human_majority
from rater.judge.scoring import Acceptance
from rater.store.ratings import replace_rating
from rater.store.tables import Rater, Rating, rating_scope, utcnow

THRESHOLDS = [1 + 0.25 * i for i in range(17)]  # 1.0 .. 5.0
CENTERS = [1.5 + 0.25 * i for i in range(13)]  # 1.5 .. 4.5
WEIGHTS = [0.1 * i for i in range(11)]  # 0.0 .. 1.0


def candidate_rules() -> list[Acceptance]:
    return ([Acceptance(rule="threshold", threshold=t) for t in THRESHOLDS]
            + [Acceptance(rule="weighted", center=c, weight=round(w, 2)) for c in CENTERS for w in WEIGHTS])


@dataclass
class Case:
    """One distractor rated by the judge and by the teachers."""

    item_id: int
    score: float
    item_scores: list[float]  # the judge's scores of every distractor of the item (for the weighted limit)
    judge_accepted: bool
    truth: bool


@dataclass
class Scorecard:
    kappa: float | None
    precision: float | None
    recall: float | None
    judge_rate: float
    human_rate: float

    @property
    def gap(self) -> float:
        return self.judge_rate - self.human_rate


def scorecard(predicted: Sequence[bool], truth: Sequence[bool]) -> Scorecard:
    precision, recall = precision_recall(predicted, truth)
    return Scorecard(cohen_kappa(predicted, truth), precision, recall, sum(predicted) / len(predicted),
                     sum(truth) / len(truth))


def predict(rule: Acceptance, case: Case) -> bool:
    return case.score > rule.limit(case.item_scores)


def best_rule(cases: Sequence[Case]) -> Acceptance:
    truth = [c.truth for c in cases]

    def quality(rule: Acceptance) -> float:
        kappa = cohen_kappa([predict(rule, c) for c in cases], truth)
        return -1.0 if kappa is None else kappa

    return max(candidate_rules(), key=quality)


def load_cases(session: Session, *, judge: str, against: Sequence[str], eval_set_id: int | None = None) -> list[Case]:
    """The distractors the judge scored and the teachers decided (majority; ties left out), in one scope."""
    names = dict(session.execute(select(Rater.name, Rater.id).where(Rater.name.in_([judge, *against]))).all())
    missing = [n for n in [judge, *against] if n not in names]
    if missing:
        raise InputError(f"No ratings by {', '.join(missing)}.", "check the rater names with `rater db stats`")
    judged = session.execute(select(Rating.distractor_id, Rating.item_id, Rating.score, Rating.accepted)
                             .where(Rating.rater_id == names[judge], Rating.score.is_not(None),
                                    rating_scope(eval_set_id))).all()
    item_scores: dict[int, list[float]] = defaultdict(list)
    for _, item_id, score, _ in judged:
        item_scores[item_id].append(score)
    labels: dict[int, dict[str, bool]] = defaultdict(dict)
    for d_id, name, accepted in session.execute(
            select(Rating.distractor_id, Rater.name, Rating.accepted).join(Rater, Rater.id == Rating.rater_id)
            .where(Rater.name.in_(against), rating_scope(eval_set_id))):
        labels[d_id][name] = accepted
    cases = []
    for d_id, item_id, score, accepted in judged:
        truth = human_majority(labels.get(d_id, {}), against)
        if truth is not None:
            cases.append(Case(item_id, score, item_scores[item_id], accepted, truth))
    return cases


def folds_by_item(cases: Sequence[Case], k: int, seed: int) -> list[list[int]]:
    """Case indices split into k folds with every item's cases in one fold."""
    items = sorted({c.item_id for c in cases})
    random.Random(seed).shuffle(items)
    fold_of = {item: n % k for n, item in enumerate(items)}
    folds: list[list[int]] = [[] for _ in range(k)]
    for index, case in enumerate(cases):
        folds[fold_of[case.item_id]].append(index)
    return [f for f in folds if f]


@dataclass
class Calibration:
    shared: int
    before: Scorecard
    after: Scorecard  # cross-validated: each fold predicted by the rule fitted on the others
    rule: Acceptance  # fitted on all shared ratings


def calibrate(cases: Sequence[Case], *, folds: int = 5, seed: int = 0, min_shared: int = 30) -> Calibration:
    if len(cases) < min_shared:
        raise InputError(f"Only {len(cases)} distractors are rated by both the judge (with scores) and the teachers; "
                         f"calibration needs at least {min_shared}.", "rate more shared distractors, or lower --min-shared")
    truth = [c.truth for c in cases]
    if len(set(truth)) < 2:
        raise InputError("The teachers accepted all or none of the shared distractors: there is nothing to fit.",
                         "rate more distractors")
    predicted = [False] * len(cases)
    for held_out in folds_by_item(cases, folds, seed):
        held = set(held_out)
        rule = best_rule([c for i, c in enumerate(cases) if i not in held])
        for i in held_out:
            predicted[i] = predict(rule, cases[i])
    return Calibration(len(cases), scorecard([c.judge_accepted for c in cases], truth), scorecard(predicted, truth),
                       best_rule(cases))


def reapply(session: Session, *, judge: str, rule: Acceptance) -> int:
    """Re-decide the judge's stored ratings with `rule`, in one query. A rating whose label changes goes to
    rating_history and gets the next revision; the others keep their decision and only take the new limit (so a
    stored "score > limit" never contradicts the decision). Returns how many labels changed."""
    rater_id = session.execute(select(Rater.id).where(Rater.name == judge)).scalar_one()
    ratings = session.execute(select(Rating).where(Rating.rater_id == rater_id, Rating.score.is_not(None))
                              .with_for_update()).scalars().all()
    by_item: dict[tuple[int, int | None], list[Rating]] = defaultdict(list)
    for rating in ratings:
        by_item[rating.item_id, rating.eval_set_id].append(rating)
    now = utcnow()
    changed = 0
    for item_ratings in by_item.values():
        limit = rule.limit([r.score for r in item_ratings])
        for rating in item_ratings:
            if (rating.score > limit) != rating.accepted:
                replace_rating(session, rating, now, accepted=not rating.accepted, limit=limit)
                changed += 1
            else:
                rating.limit = limit
    return changed
