"""Calibrating an LLM judge's acceptance rule against teachers: grid search, cross-validated by item."""

import json
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Sequence

from sqlalchemy import select
from sqlmodel import Session, col

from rater.core.domain import RaterKind
from rater.core.errors import InputError
from rater.evaluation.agreement import cohen_kappa, precision_recall
from rater.evaluation.linear import solve
from rater.evaluation.report import human_majority
from rater.judge.scoring import Acceptance
from rater.store.ratings import replace_rating
from rater.store.tables import RaterRecord, Rating, rating_scope, utcnow

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


TIE = 1e-9  # kappas closer than this are equal: floating-point noise never picks a rule

Population = Sequence[tuple[float, Sequence[float]]]  # every distractor the judge scored: (score, its item's scores)


def acceptance_model(cases: Sequence[Case], ridge: float = 0.05) -> Callable[[float, float], float]:
    """P(the teachers accept | the judge's score, the mean score of its item): a logistic regression fitted to the
    cases by Newton's method, with a weak ridge so that cases one threshold separates perfectly still give finite
    weights. Which distractors teachers rated may depend on the judge's scores (`--order uncertain` asks about those
    near the limit first) without biasing it: it models the teachers' decision given the scores."""
    counted: dict[tuple[float, float], list[float]] = {}  # (score, item mean) -> [accepted, rated]
    for c in cases:
        entry = counted.setdefault((c.score - 3.0, sum(c.item_scores) / len(c.item_scores) - 3.0), [0.0, 0.0])
        entry[0] += c.truth
        entry[1] += 1
    rows = [((1.0, score, mean), yes, n) for (score, mean), (yes, n) in sorted(counted.items())]
    beta = [0.0, 0.0, 0.0]
    for _ in range(50):
        gradient = [-ridge * b for b in beta]
        hessian = [[ridge if i == j else 0.0 for j in range(3)] for i in range(3)]
        for x, yes, n in rows:
            p = _sigmoid(sum(b * v for b, v in zip(beta, x)))
            for i in range(3):
                gradient[i] += (yes - n * p) * x[i]
                for j in range(3):
                    hessian[i][j] += n * p * (1 - p) * x[i] * x[j]
        step = solve(hessian, gradient) or [0.0, 0.0, 0.0]  # (ridged: never singular)
        beta = [b + d for b, d in zip(beta, step)]
        if max(abs(d) for d in step) < 1e-9:
            break

    def model(score: float, mean: float) -> float:
        return _sigmoid(beta[0] + beta[1] * (score - 3.0) + beta[2] * (mean - 3.0))
    return model


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def _expected_kappa(groups: Sequence[tuple[float, float, float, float]], rule: Acceptance) -> float | None:
    """Kappa expected over the population when teachers accept each distractor with its modelled probability.
    groups: (score, item mean, distractors, their summed probability)."""
    total = accepted = agree_yes = predicted_yes = 0.0
    for score, mean, count, probability in groups:
        total += count
        accepted += probability
        if score > rule.limit([mean]):
            predicted_yes += count
            agree_yes += probability
    agree = agree_yes + (total - predicted_yes) - (accepted - agree_yes)
    chance = (predicted_yes * accepted + (total - predicted_yes) * (total - accepted)) / (total * total)
    if chance >= 1:
        return None
    return (agree / total - chance) / (1 - chance)


def best_rule(cases: Sequence[Case], population: Population | None = None,
              rules: Sequence[Acceptance] | None = None) -> tuple[Acceptance, float | None]:
    """The rule with the highest kappa against the teachers expected over every distractor the judge scored
    (`population`; the cases themselves without it), teachers' acceptance taken from `acceptance_model`; and that
    rule's kappa on the cases. Ties go to the simplest rule, the first in `candidate_rules()` order: a fixed
    threshold before a weighted limit, and among those the lowest threshold (or centre, then weight). `rules`: a
    narrower list to choose from (default: `candidate_rules()`).

    Choosing by the kappa expected over the whole study rather than the kappa on the rated sample matters when the
    sample is not random: teachers shown the items nearest the limit first (`--order uncertain`) rate a sample where
    every rule looks poor, and the rule best on it is not the best on the study."""
    model = acceptance_model(cases)
    grouped: dict[tuple[float, float], list[float]] = {}
    for score, item_scores in (population if population else [(c.score, c.item_scores) for c in cases]):
        mean = sum(item_scores) / len(item_scores)
        entry = grouped.setdefault((score, mean), [0.0, 0.0])
        entry[0] += 1
        entry[1] += model(score, mean)
    groups = [(score, mean, count, probability) for (score, mean), (count, probability) in sorted(grouped.items())]
    best: tuple[Acceptance, float | None] | None = None
    for rule in rules or candidate_rules():
        expected = _expected_kappa(groups, rule)
        if best is None or (expected is not None and (best[1] is None or expected > best[1] + TIE)):
            best = (rule, expected)
    assert best is not None
    truth = [c.truth for c in cases]
    return best[0], cohen_kappa([predict(best[0], c) for c in cases], truth)


@dataclass
class Cases:
    """The distractors the judge scored that the teachers decided, and how many more they rated but split evenly on."""

    cases: list[Case]
    ties: int = 0
    population: list[tuple[float, list[float]]] = field(default_factory=list)  # every distractor the judge scored


def check_kinds(session: Session, *, judge: str, against: Sequence[str]) -> dict[str, int]:
    """Ids of the judge and the teachers; the judge must be an LLM judge (scores to calibrate), every `against` a
    teacher, and none of them the judge itself."""
    if not against:
        raise InputError("--against names no teacher.", "pass the teachers' names, comma-separated: --against anna,bo")
    found = {name: (rater_id, kind) for name, rater_id, kind in session.execute(
        select(col(RaterRecord.name), col(RaterRecord.id), col(RaterRecord.kind)).where(col(RaterRecord.name).in_([judge, *against]))).all()}
    missing = [n for n in [judge, *against] if n not in found]
    if missing:
        known = ", ".join(session.execute(select(col(RaterRecord.name)).order_by(col(RaterRecord.name))).scalars()) or "none"
        raise InputError(f"No rater named {', '.join(missing)}.", f"raters here: {known}")
    if found[judge][1] != RaterKind.llm:
        raise InputError(f"{judge} is a {found[judge][1]} rater, not an LLM judge: only a judge's scores can be "
                         "calibrated.", "pass an LLM judge's name with --judge (`rater db stats` lists kinds)")
    if judge in against:
        raise InputError(f"--against names the judge {judge} itself.", "pass the teachers' names with --against")
    others = [n for n in against if found[n][1] != RaterKind.human]
    if others:
        raise InputError(f"--against takes teachers only; {', '.join(others)} is not a teacher.",
                         "pass the names of teachers (kind human) with --against")
    return {name: rater_id for name, (rater_id, _) in found.items()}


def load_cases(session: Session, *, judge: str, against: Sequence[str], eval_set_id: int | None = None) -> Cases:
    """The distractors the judge scored and the teachers decided (majority; ties left out and counted), in one
    scope."""
    names = check_kinds(session, judge=judge, against=against)
    judged = session.execute(select(col(Rating.distractor_id), col(Rating.item_id), col(Rating.score), col(Rating.accepted))
                             .where(col(Rating.rater_id) == names[judge], col(Rating.score).is_not(None),
                                    rating_scope(eval_set_id))).all()
    item_scores: dict[int, list[float]] = defaultdict(list)
    for _, item_id, score, _ in judged:
        item_scores[item_id].append(score)
    labels: dict[int, dict[str, bool]] = defaultdict(dict)
    for d_id, name, accepted in session.execute(
            select(col(Rating.distractor_id), col(RaterRecord.name), col(Rating.accepted)).join(RaterRecord, col(RaterRecord.id) == col(Rating.rater_id))
            .where(col(RaterRecord.name).in_(against), rating_scope(eval_set_id))):
        labels[d_id][name] = accepted
    found = Cases([], population=[(score, item_scores[item_id]) for _, item_id, score, _ in judged])
    for d_id, item_id, score, accepted in judged:
        truth = human_majority(labels.get(d_id, {}), against)
        if truth is not None:
            found.cases.append(Case(item_id, score, item_scores[item_id], accepted, truth))
        elif labels.get(d_id):
            found.ties += 1
    return found


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


def calibrate(found: Cases | Sequence[Case], *, folds: int = 5, seed: int = 0, min_shared: int = 30) -> Calibration:
    """Fit the rule on every case and report it cross-validated; refuses when there is nothing to fit."""
    cases = found.cases if isinstance(found, Cases) else list(found)
    ties = found.ties if isinstance(found, Cases) else 0
    population = found.population if isinstance(found, Cases) else None
    if len(cases) < min_shared:
        tied = (f"; {ties} more are shared, but the teachers split evenly on them (no majority label)" if ties
                else "")
        raise InputError(f"Only {len(cases)} distractors are rated by both the judge (with scores) and the teachers "
                         f"with a majority label{tied}; calibration needs at least {min_shared}.",
                         "rate more shared distractors (an odd number of teachers never ties), or lower --min-shared")
    truth = [c.truth for c in cases]
    if len(set(truth)) < 2:
        raise InputError("The teachers accepted all or none of the shared distractors: there is nothing to fit.",
                         "rate more distractors")
    if len({c.score for c in cases}) < 2:
        raise InputError(f"The judge gave every shared distractor the same score ({cases[0].score:g}): no rule can "
                         "tell them apart, so there is nothing to fit.",
                         "check the judge's answers (`rater browse`); a judge that never varies cannot be calibrated")
    rule, kappa = best_rule(cases, population)
    if kappa is None or kappa <= TIE:
        raise InputError(f"No acceptance rule agrees with the teachers better than chance (best kappa "
                         f"{'-' if kappa is None else f'{kappa:.3f}'}): the judge's scores do not follow the teachers' "
                         "decisions.", "nothing was saved; check the judge's prompt and model against the teachers")
    predicted = [False] * len(cases)
    for held_out in folds_by_item(cases, folds, seed):
        held = set(held_out)
        fold_rule, _ = best_rule([c for i, c in enumerate(cases) if i not in held], population)
        for i in held_out:
            predicted[i] = predict(fold_rule, cases[i])
    return Calibration(len(cases), scorecard([c.judge_accepted for c in cases], truth), scorecard(predicted, truth),
                       rule)


def reapply(session: Session, *, judge: str, rule: Acceptance) -> int:
    """Re-decide the judge's stored ratings with `rule`, in one query. A rating whose label changes goes to
    rating_history and gets the next revision; the others keep their decision and only take the new limit (so a
    stored "score > limit" never contradicts the decision). Returns how many labels changed."""
    record = session.execute(select(RaterRecord).where(col(RaterRecord.name) == judge)).scalar_one()
    rater_id = record.id
    settings = json.loads(record.settings or "{}")
    record.settings = json.dumps({**settings, "acceptance": rule.as_dict()}, sort_keys=True)  # the rule its labels follow
    ratings = session.execute(select(Rating).where(col(Rating.rater_id) == rater_id, col(Rating.score).is_not(None))
                              .with_for_update()).scalars().all()
    by_item: dict[tuple[int, int | None], list[Rating]] = defaultdict(list)
    for rating in ratings:
        by_item[rating.item_id, rating.eval_set_id].append(rating)
    now = utcnow()
    changed = 0
    for item_ratings in by_item.values():
        scores = [r.score for r in item_ratings if r.score is not None]  # (all: the query asked for scores)
        limit = rule.limit(scores)
        for rating, score in zip(item_ratings, scores):
            if (score > limit) != rating.accepted:
                replace_rating(session, rating, now, accepted=not rating.accepted, limit=limit)
                changed += 1
            else:
                rating.limit = limit
    return changed
