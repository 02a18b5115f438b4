"""The teachers' acceptance of a source, estimated from a judge's labels on every distractor and the teachers'
labels where they exist: prediction-powered inference in its power-tuned form (PPI++, Angelopoulos et al. 2023).
Its 95 % interval stays valid however biased the judge is, and is narrower than the teachers' labels alone when the
judge's labels follow the teachers'.

Per distractor, y is the share of its teachers who accepted it and f the judge's predictors: its label (1 accepted,
0 rejected), and its 1-5 score (a panel's: the members' share accepting or mean score) when it gave one for every
distractor of the source. A score says how sure the judge was, which a label throws away: a lenient judge's label
barely follows the teachers', its score much more (benchmarks/bench_estimate.py). With n distractors labelled by
both (L) and N labelled by the judge only (U):

    rate = mean_L(y) + lam . (mean_U(f) - mean_L(f))
    se^2 = var_L(y - lam . f) / n + lam' cov_U(f) lam / N
    lam  = ((1 + n / N) cov(f))^-1 cov_L(f, y)        (lam = 0: the teachers' mean alone)

With the label alone, lam is kept within [0, 1]. Any lam gives a valid interval; this one makes it narrowest.

The teachers-only figure beside it is mean_L(y) with se^2 = var_L(y) / n (over all distractors the teachers
labelled, with the judge or not)."""

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Sequence

from rater.core.domain import RaterKind
from rater.evaluation.linear import solve

Z = 1.959964


@dataclass(frozen=True)
class Estimate:
    rate: float | None
    ci95: tuple[float, float] | None
    teacher_n: int  # distractors with teachers' labels (and the judge's, for the combined estimate)
    judge_n: int  # distractors with the judge's label only
    method: str
    se: float | None = None
    lam: float | None = None  # the weight on the judge's label
    reason: str | None = None  # why there is no estimate
    lam_score: float | None = None  # the weight on its score, when the score is used
    predictors: str = "label"  # what of the judge's the estimate uses: "label", or "label and score"
    note: str | None = None  # how it was made, when not plainly (a judge that rated part of the source)

    def as_json(self) -> dict:
        data = asdict(self)
        data["ci95"] = list(self.ci95) if self.ci95 else None
        return data


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _var(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    m = _mean(values)
    return sum((v - m) ** 2 for v in values) / (len(values) - 1)


def _cov(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) < 2:
        return 0.0
    ma, mb = _mean(a), _mean(b)
    return sum((x - ma) * (y - mb) for x, y in zip(a, b)) / (len(a) - 1)


def _interval(rate: float, se: float) -> tuple[float, float]:
    return (max(0.0, rate - Z * se), min(1.0, rate + Z * se))


def teachers_only(y: Sequence[float]) -> Estimate:
    if not y:
        return Estimate(None, None, 0, 0, "teachers", reason="no teacher labels")
    rate, se = _mean(y), math.sqrt(_var(y) / len(y))
    return Estimate(rate, _interval(rate, se), len(y), 0, "teachers", se=se)


Predictors = float | Sequence[float]  # the judge's label, or (label, score)


def _vectors(values: Sequence[Predictors]) -> list[tuple[float, ...]]:
    return [(float(v),) if isinstance(v, (int, float)) else tuple(v) for v in values]


def _covariances(rows: Sequence[tuple[float, ...]]) -> list[list[float]]:
    columns = list(zip(*rows))
    return [[_cov(a, b) for b in columns] for a in columns]


@dataclass(frozen=True)
class Fit:
    """PPI++'s weights and the two parts of its variance: the teachers' residual spread (per labelled distractor)
    and the judge-only part (already divided by N)."""

    lam: list[float]
    residual: float
    judge_part: float
    used_score: bool = False  # the score had a weight of its own (not dropped as saying nothing beyond the label)


def fit(y_labeled: Sequence[float], f_labeled: Sequence[Predictors], f_unlabeled: Sequence[Predictors],
        tuned: bool = True) -> Fit:
    f_l, f_u = _vectors(f_labeled), _vectors(f_unlabeled)
    n, big_n, size = len(y_labeled), len(f_u), len(f_l[0])
    lam = [1.0] + [0.0] * (size - 1)
    if tuned:
        spread = _covariances(f_l + f_u)
        usable = [j for j in range(size) if spread[j][j] > 0]  # a predictor that never varies says nothing
        lam = [0.0] * size
        towards = [_cov([v[j] for v in f_l], y_labeled) for j in range(size)]
        solved = solve([[(1 + n / big_n) * spread[i][j] for j in usable] for i in usable], [towards[j] for j in usable])
        if solved is None and 0 in usable:  # the score adds nothing beyond the label (two values, the same split)
            usable = [0]
            solved = solve([[(1 + n / big_n) * spread[0][0]]], [towards[0]])
        for j, weight in zip(usable, solved or []):
            lam[j] = weight
        if size == 1:
            lam[0] = min(1.0, max(0.0, lam[0]))
    residual = _var([y - sum(w * x for w, x in zip(lam, v)) for y, v in zip(y_labeled, f_l)])
    unlabeled = _covariances(f_u) if big_n >= 2 else [[0.0] * size for _ in range(size)]
    judge_part = sum(lam[i] * lam[j] * unlabeled[i][j] for i in range(size) for j in range(size)) / big_n
    return Fit(lam, residual, judge_part, used_score=tuned and size > 1 and 1 in usable)


def ppi(y_labeled: Sequence[float], f_labeled: Sequence[Predictors], f_unlabeled: Sequence[Predictors],
        tuned: bool = True) -> Estimate:
    """The prediction-powered estimate from the teachers' labels y with the judge's predictors f where both exist,
    and the judge's predictors f on the distractors the teachers did not label."""
    n, big_n = len(y_labeled), len(f_unlabeled)
    if n == 0:
        return Estimate(None, None, 0, big_n, "ppi++", reason="no distractor has both the teachers' and the judge's label")
    if big_n == 0:
        only = teachers_only(y_labeled)
        return Estimate(only.rate, only.ci95, n, 0, "ppi++", se=only.se, lam=0.0)
    weights = fit(y_labeled, f_labeled, f_unlabeled, tuned)
    f_l, f_u = _vectors(f_labeled), _vectors(f_unlabeled)
    shift = sum(w * (_mean([v[j] for v in f_u]) - _mean([v[j] for v in f_l])) for j, w in enumerate(weights.lam))
    rate = _mean(y_labeled) + shift
    se = math.sqrt(weights.residual / n + weights.judge_part)
    scored = weights.used_score
    return Estimate(min(1.0, max(0.0, rate)), _interval(rate, se), n, big_n, "ppi++" if tuned else "ppi", se=se,
                    lam=weights.lam[0], lam_score=weights.lam[1] if scored else None,
                    predictors="label and score" if scored else "label")


@dataclass(frozen=True)
class Labels:
    """One source's labels: teachers' share accepting per distractor, and the judge's predictors per distractor
    (its label, and its score where it scored every distractor of the source)."""

    teachers: dict[int, float]
    judge: dict[int, tuple[float, ...]]

    def split(self) -> tuple[list[float], list[tuple[float, ...]], list[tuple[float, ...]]]:
        both = [d for d in self.teachers if d in self.judge]
        return ([self.teachers[d] for d in both], [self.judge[d] for d in both],
                [f for d, f in self.judge.items() if d not in self.teachers])


def labels_by_source(rows, judge: str) -> dict[str, Labels]:
    """From report rows (RatingRow): per source, the teachers' share of accepts and the judge's predictors: its
    label, with its score beside it when it scored every distractor of the source and not all alike."""
    votes: dict[str, dict[int, list[bool]]] = defaultdict(lambda: defaultdict(list))
    judged: dict[str, dict[int, tuple[float, float | None]]] = defaultdict(dict)
    for r in rows:
        if r.kind == RaterKind.human:
            votes[r.source][r.distractor_id].append(bool(r.accepted))
        elif r.rater == judge:
            judged[r.source][r.distractor_id] = (1.0 if r.accepted else 0.0, r.score)
    found = {}
    for source in sorted(set(votes) | set(judged)):
        pairs = judged.get(source, {})
        scores = {s for _, s in pairs.values()}
        scored = None not in scores and len(scores) > 1
        found[source] = Labels({d: sum(v) / len(v) for d, v in votes.get(source, {}).items()},
                               {d: (f, float(s)) if scored and s is not None else (f,) for d, (f, s) in pairs.items()})
    return found


def estimate_source(labels: Labels, pool: int | None = None) -> dict:
    """`{rate, ci95, teacher_n, judge_n, method, ...}` and the teachers-only figure beside it, or why not. `pool`:
    the source's distractors in all (default: those anyone rated).

    When the judge rated only part of the source, its labels speak for that part only: the estimate is then
    stratified, PPI++ on the judged part and the teachers' mean on the rest, weighted by their sizes, and needs
    teacher labels in both. (Without this, the teachers' labels of the unjudged part would be left out and the
    estimate would answer for the judged part alone, which may differ: a judge's failures cluster on some items.)"""
    only = teachers_only(list(labels.teachers.values()))
    total = max(pool or 0, len(set(labels.teachers) | set(labels.judge)))
    rest = [y for d, y in labels.teachers.items() if d not in labels.judge]
    unjudged = total - len(labels.judge)
    if not labels.teachers:
        combined = Estimate(None, None, 0, len(labels.judge), "ppi++",
                            reason="no teacher has rated this source: the judge's labels alone would carry its bias")
    elif not labels.judge:
        combined = Estimate(None, None, len(labels.teachers), 0, "ppi++",
                            reason="the judge rated none of this source's distractors")
    elif unjudged == 0:
        combined = ppi(*labels.split())
    else:
        combined = _stratified(labels, total, unjudged, rest)
    return {**combined.as_json(), "teachers_only": only.as_json()}


def _stratified(labels: Labels, total: int, unjudged: int, rest: list[float]) -> Estimate:
    judged = total - unjudged
    part = ppi(*labels.split())
    covers = f"the judge rated {judged} of the source's {total} distractors"
    if part.rate is None or part.se is None or len(rest) < 2:
        return Estimate(None, None, len(labels.teachers), part.judge_n, "ppi++, stratified", reason=(
            f"{covers}, and its labels speak for those only; teachers rated {len(rest)} of the other {unjudged} (an "
            f"estimate needs 2 or more there) and {part.teacher_n} of the judged ones (it needs 1 or more): have "
            "teachers rate more of the part the judge left out, or judge all of it"))
    other = teachers_only(rest)
    assert other.rate is not None and other.se is not None
    share = judged / total
    rate = share * part.rate + (1 - share) * other.rate
    se = math.sqrt((share * part.se) ** 2 + ((1 - share) * other.se) ** 2)
    return Estimate(rate, _interval(rate, se), len(labels.teachers), part.judge_n, "ppi++, stratified", se=se,
                    lam=part.lam, lam_score=part.lam_score, predictors=part.predictors,
                    note=f"{covers}: the other {unjudged} are estimated from the teachers' {len(rest)} labels of them "
                         "alone, and the two parts weighted by their sizes")


def estimates(rows, judge: str, pools: dict[str, int] | None = None) -> tuple[dict[str, dict], dict[str, dict]]:
    """Per source its estimate; and per pair of sources the difference with its 95 % interval ("is it real?").
    `pools`: each source's distractors in all."""
    per_source = {source: estimate_source(labels, (pools or {}).get(source))
                  for source, labels in labels_by_source(rows, judge).items()}
    differences = {}
    for a, b in combinations(sorted(per_source), 2):
        ea, eb = per_source[a], per_source[b]
        if ea["rate"] is None or eb["rate"] is None:
            continue
        diff, se = ea["rate"] - eb["rate"], math.sqrt(ea["se"] ** 2 + eb["se"] ** 2)
        low, high = diff - Z * se, diff + Z * se
        differences[f"{a} - {b}"] = {"difference": diff, "ci95": [low, high], "excludes_zero": low > 0 or high < 0}
    return per_source, differences


def teachers_needed(labels: Labels, width: float, with_judge: bool, pool: int | None = None) -> dict:
    """More teacher-labelled distractors this source needs for a 95 % interval of `width`, the current labels'
    spread taken as it will stay. With the judge: its judge-only labels and lam as now, and never more than the
    teachers alone would need (lam = 0 is the teachers' own estimate). `pool`: the source's distractors in all; a
    need beyond them is not reachable by rating more."""
    have = len(labels.teachers)
    target_se = width / (2 * Z)
    y = list(labels.teachers.values())
    spread = _var(y) if len(y) >= 2 else 0.25  # unknown: the widest a share can spread
    alone = math.ceil(spread / target_se ** 2) if spread > 0 else 1
    need: int | None = alone
    note = None
    if with_judge and not labels.judge:
        note = "the judge rated none of this source: the teachers' figure"
    elif with_judge and pool is not None and len(labels.judge) < pool:  # its labels speak for part of the source
        note = (f"the judge rated {len(labels.judge)} of the source's {pool} distractors: the teachers' figure (judge "
                "all of it to plan with it)")
    elif with_judge:
        y_l, f_l, f_u = labels.split()
        if f_u and y_l:
            weights = fit(y_l, f_l, f_u)
            residual = weights.residual if len(y_l) >= 2 else 0.25
            if weights.judge_part < target_se ** 2:
                combined = math.ceil(residual / (target_se ** 2 - weights.judge_part)) if residual > 0 else 1
                need = min(alone, combined + (have - len(y_l)))  # teachers' labels without the judge's count too
    more = max(0, need - have) if need is not None else None
    reachable = pool is None or need is None or need <= pool
    return {"have": have, "need": need, "more": more, "reachable": reachable, "pool": pool,
            **({"note": note} if note else {})}
