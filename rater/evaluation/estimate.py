"""The teachers' acceptance of a source, estimated from a judge's labels on every distractor and the teachers'
labels where they exist: prediction-powered inference in its power-tuned form (PPI++, Angelopoulos et al. 2023).
Its 95 % interval stays valid however biased the judge is, and is narrower than the teachers' labels alone when the
judge's labels follow the teachers'.

Per distractor, y is the share of its teachers who accepted it and f the judge's label (1 accepted, 0 rejected).
With n distractors labelled by both (L) and N labelled by the judge only (U):

    rate = mean_L(y) + lam * (mean_U(f) - mean_L(f))
    se^2 = var_L(y - lam f) / n + lam^2 var_U(f) / N
    lam  = cov_L(y, f) / ((1 + n / N) var(f)), within [0, 1]    (lam = 0: the teachers' mean alone)

The teachers-only figure beside it is mean_L(y) with se^2 = var_L(y) / n (over all distractors the teachers
labelled, with the judge or not)."""

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Sequence

from rater.core.domain import RaterKind

Z = 1.959964


@dataclass(frozen=True)
class Estimate:
    rate: float | None
    ci95: tuple[float, float] | None
    teacher_n: int  # distractors with teachers' labels (and the judge's, for the combined estimate)
    judge_n: int  # distractors with the judge's label only
    method: str
    se: float | None = None
    lam: float | None = None
    reason: str | None = None  # why there is no estimate

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


def ppi(y_labeled: Sequence[float], f_labeled: Sequence[float], f_unlabeled: Sequence[float],
        tuned: bool = True) -> Estimate:
    """The prediction-powered estimate from labelled pairs (y, f) and the judge-only labels f."""
    n, big_n = len(y_labeled), len(f_unlabeled)
    if n == 0:
        return Estimate(None, None, 0, big_n, "ppi++", reason="no distractor has both the teachers' and the judge's label")
    if big_n == 0:
        only = teachers_only(y_labeled)
        return Estimate(only.rate, only.ci95, n, 0, "ppi++", se=only.se, lam=0.0)
    variance_f = _var(list(f_labeled) + list(f_unlabeled))
    lam = 1.0
    if tuned:
        lam = _cov(y_labeled, f_labeled) / ((1 + n / big_n) * variance_f) if variance_f > 0 else 0.0
        lam = min(1.0, max(0.0, lam))
    rate = _mean(y_labeled) + lam * (_mean(f_unlabeled) - _mean(f_labeled))
    residual = [y - lam * f for y, f in zip(y_labeled, f_labeled)]
    se = math.sqrt(_var(residual) / n + lam * lam * _var(f_unlabeled) / big_n)
    return Estimate(min(1.0, max(0.0, rate)), _interval(rate, se), n, big_n, "ppi++" if tuned else "ppi", se=se,
                    lam=lam)


@dataclass(frozen=True)
class Labels:
    """One source's labels: teachers' share accepting per distractor, and the judge's label per distractor."""

    teachers: dict[int, float]
    judge: dict[int, float]

    def split(self) -> tuple[list[float], list[float], list[float]]:
        both = [d for d in self.teachers if d in self.judge]
        return ([self.teachers[d] for d in both], [self.judge[d] for d in both],
                [f for d, f in self.judge.items() if d not in self.teachers])


def labels_by_source(rows, judge: str) -> dict[str, Labels]:
    """From report rows (RatingRow): per source, the teachers' share of accepts and the judge's label."""
    votes: dict[str, dict[int, list[bool]]] = defaultdict(lambda: defaultdict(list))
    judged: dict[str, dict[int, float]] = defaultdict(dict)
    for r in rows:
        if r.kind == RaterKind.human:
            votes[r.source][r.distractor_id].append(bool(r.accepted))
        elif r.rater == judge:
            judged[r.source][r.distractor_id] = 1.0 if r.accepted else 0.0
    return {source: Labels({d: sum(v) / len(v) for d, v in votes.get(source, {}).items()}, judged.get(source, {}))
            for source in sorted(set(votes) | set(judged))}


def estimate_source(labels: Labels) -> dict:
    """`{rate, ci95, teacher_n, judge_n, method, ...}` and the teachers-only figure beside it, or why not."""
    only = teachers_only(list(labels.teachers.values()))
    if not labels.teachers:
        combined = Estimate(None, None, 0, len(labels.judge), "ppi++",
                            reason="no teacher has rated this source: the judge's labels alone would carry its bias")
    elif not labels.judge:
        combined = Estimate(None, None, len(labels.teachers), 0, "ppi++",
                            reason="the judge rated none of this source's distractors")
    else:
        combined = ppi(*labels.split())
    return {**combined.as_json(), "teachers_only": only.as_json()}


def estimates(rows, judge: str) -> tuple[dict[str, dict], dict[str, dict]]:
    """Per source its estimate; and per pair of sources the difference with its 95 % interval ("is it real?")."""
    per_source = {source: estimate_source(labels) for source, labels in labels_by_source(rows, judge).items()}
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
    if with_judge:
        y_l, f_l, f_u = labels.split()
        if f_u:
            lam = ppi(y_l, f_l, f_u).lam or 0.0
            residual = _var([a - lam * b for a, b in zip(y_l, f_l)]) if len(y_l) >= 2 else 0.25
            floor = lam * lam * _var(f_u) / len(f_u)
            if floor < target_se ** 2:
                combined = math.ceil(residual / (target_se ** 2 - floor)) if residual > 0 else 1
                need = min(alone, combined + (have - len(y_l)))  # teachers' labels without the judge's count too
    more = max(0, need - have) if need is not None else None
    reachable = pool is None or need is None or need <= pool
    return {"have": have, "need": need, "more": more, "reachable": reachable, "pool": pool}
