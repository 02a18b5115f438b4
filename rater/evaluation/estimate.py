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
    se^2 = var_L(y - lam . f) / n + lam' cov_U(f) lam / N        (distractors taken one by one)
    lam  = ((1 + n / N) cov(f))^-1 cov_L(f, y)        (lam = 0: the teachers' mean alone)

With the label alone, lam is kept within [0, 1]. Any lam gives a valid interval; this one makes it narrowest.

The teachers-only figure beside it is mean_L(y) with se^2 = var_L(y) / n (over all distractors the teachers
labelled, with the judge or not).

Teachers rate whole items, and the distractors of one item go together (an easy question's distractors are all
easy to reject), so the variances are summed by item, not by distractor (cluster-robust, CR1): each item's share of
the estimate's error is the sum of its distractors' (v - mean) / n, and se^2 = G / (G - 1) times the sum of the
squared shares over G items. With one distractor per item this is the formula above; with items whose distractors
agree it is wider, as it must be (benchmarks/bench_estimate.py: 95 % coverage where the distractor-by-distractor
interval holds the truth far less often). A difference between two sources, or the two parts of a stratified
estimate, sums the shares of the same item before squaring, so distractors of one item in both count once. A part
whose labels all come from one item cannot show how items differ: it is taken distractor by distractor, with a
note. Intervals use Student's t on the items less one (Welch-Satterthwaite where parts combine), and teacher labels
all alike (no spread shown) Agresti-Coull's interval from (accepted + 2) / (labels + 4)."""

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from itertools import combinations
from typing import Hashable, Sequence

from rater.core.domain import RaterKind
from rater.evaluation.linear import solve

Z = 1.959964
T975 = [12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157]  # df 1-9


def t975(df: float) -> float:
    """The 97.5 % point of Student's t with `df` degrees of freedom: exact for 1-9 (a fractional df rounds down,
    the wider side), from its Cornish-Fisher expansion above (within 1e-5); intervals from few items are wider than
    the normal's 1.96, as they must be to hold the truth 95 % of the time."""
    if df < 10:
        return T975[max(0, int(df) - 1)]
    z, v = Z, df
    return (z + (z ** 3 + z) / (4 * v) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * v ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * v ** 3)
            + (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / (92160 * v ** 4))


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
    df: float | None = None  # the interval's degrees of freedom (Student's t): about the items rated, less one
    spread: "Spread | None" = field(default=None, repr=False, compare=False)  # each item's share of the error

    def as_json(self) -> dict:
        data = asdict(self)
        data.pop("spread")
        for name in ("lam", "lam_score"):
            if data[name] == 0:
                data[name] = 0.0  # not -0.0
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


def _interval(rate: float, se: float, df: float) -> tuple[float, float]:
    return (max(0.0, rate - t975(df) * se), min(1.0, rate + t975(df) * se))


Errors = dict[Hashable, float]


@dataclass(frozen=True)
class Spread:
    """Each item's share of an estimate's error (their squares sum to its variance) and its degrees of freedom."""

    errors: Errors
    df: float

    @property
    def se(self) -> float:
        return math.sqrt(sum(share * share for share in self.errors.values()))


def _combined(*parts: tuple[float, Spread]) -> Spread:
    """Weighted sums of the parts' shares, item by item; degrees of freedom by Welch-Satterthwaite."""
    total: Errors = defaultdict(float)
    for weight, part in parts:
        for key, share in part.errors.items():
            total[key] += weight * share
    pieces = [((weight * part.se) ** 2, part.df) for weight, part in parts]
    variance = sum(v for v, _ in pieces)
    df = (variance ** 2 / sum(v * v / d for v, d in pieces if v > 0) if variance > 0
          else min(d for _, d in pieces))
    return Spread(dict(total), df)


ONE_ITEM = ("the teachers' labels come from one item, which cannot show how items differ: the interval takes its "
            "distractors one by one and may be too narrow; have teachers rate more items")


@dataclass(frozen=True)
class Keys:
    """Per value, its item (`clusters`, None: every value its own) and its own key (`own`, used when the values
    come from one item or no items are given); keys from different sources or parts must not collide."""

    clusters: Sequence[Hashable] | None
    own: Sequence[Hashable]

    @classmethod
    def plain(cls, tag: str, n: int) -> "Keys":
        return cls(None, [(tag, i) for i in range(n)])

    @property
    def by_item(self) -> bool:
        return self.clusters is not None and len(set(self.clusters)) >= 2

    @property
    def used(self) -> Sequence[Hashable]:
        """The keys the errors are summed by: the items, or each value's own when there are fewer than two."""
        return self.clusters if self.clusters is not None and self.by_item else self.own


def _errors(values: Sequence[float], keys: Keys) -> Spread:
    """Each item's share of the error of the mean of `values`: the sum of (v - mean) / n over its values, scaled
    by sqrt(G / (G - 1)) for G items (CR1), so that the squares add up to the mean's variance; G - 1 degrees of
    freedom."""
    n = len(values)
    if n < 2:
        return Spread({}, 1)
    m = _mean(values)
    sums: Errors = defaultdict(float)
    for key, v in zip(keys.used, values):
        sums[key] += (v - m) / n
    scale = math.sqrt(len(sums) / (len(sums) - 1))
    return Spread({key: share * scale for key, share in sums.items()}, len(sums) - 1)


def _one_item(keys: Keys) -> str | None:
    return ONE_ITEM if keys.clusters is not None and len(keys.own) >= 2 and not keys.by_item else None


def _alike_centre(y: Sequence[float]) -> float | None:
    """Agresti-Coull's (accepted + 2) / (labels + 4) when the labels are all alike, else None."""
    return (sum(y) + 2) / (len(y) + 4) if y and len(set(y)) == 1 else None


def _agreeing(y: Sequence[float], keys: Keys) -> Estimate | None:
    """When the teachers' labels are all alike they show no spread, which is not a spread of zero (20 rejections
    do not prove a rate of 0): the interval is then Agresti-Coull's, from (k + 2) / (n + 4), with t on the items
    less one."""
    if (centre := _alike_centre(y)) is None:
        return None
    n, k = len(y), sum(y)
    se = math.sqrt(centre * (1 - centre) / (n + 4))
    df = max(1, len(set(keys.used)) - 1)
    alike = "all reject" if k == 0 else "all accept" if k == n else "are all alike"
    return Estimate(_mean(y), _interval(centre, se, df), n, 0, "teachers", se=se, df=df,
                    note=f"the teachers' {n} label{'s' if n != 1 else ''} {alike}, which shows no spread: the interval "
                         "is Agresti-Coull's, from (accepted + 2) / (labels + 4)",
                    spread=Spread({("alike", *keys.own[:1]): se}, df))


def teachers_only(y: Sequence[float], keys: Keys | None = None) -> Estimate:
    if not y:
        return Estimate(None, None, 0, 0, "teachers", reason="no teacher labels")
    keys = keys or Keys.plain("teacher", len(y))
    if alike := _agreeing(y, keys):
        return alike
    spread = _errors(y, keys)
    rate, se = _mean(y), spread.se
    return Estimate(rate, _interval(rate, se, spread.df), len(y), 0, "teachers", se=se, note=_one_item(keys),
                    df=spread.df, spread=spread)


Predictors = float | Sequence[float]  # the judge's label, or (label, score)


def _vectors(values: Sequence[Predictors]) -> list[tuple[float, ...]]:
    return [(float(v),) if isinstance(v, (int, float)) else tuple(v) for v in values]


def _covariances(rows: Sequence[tuple[float, ...]]) -> list[list[float]]:
    columns = list(zip(*rows))
    return [[_cov(a, b) for b in columns] for a in columns]


@dataclass(frozen=True)
class Fit:
    """PPI++'s weights and the two parts of its error, each item's share: the teachers' residuals and the judge-only
    predictions; `residual` is the residuals' spread per labelled distractor (for planning)."""

    lam: list[float]
    residual: float
    labelled: Spread
    judged: Spread
    used_score: bool = False  # the score had a weight of its own (not dropped as saying nothing beyond the label)

    @property
    def judge_part(self) -> float:
        return self.judged.se ** 2

    def design_effect(self, n: int) -> float:
        """How much grouping by item widens the teachers' part against distractors taken one by one."""
        alone = self.residual / n
        return self.labelled.se ** 2 / alone if alone > 0 and self.labelled.errors else 1.0


def fit(y_labeled: Sequence[float], f_labeled: Sequence[Predictors], f_unlabeled: Sequence[Predictors],
        tuned: bool = True, keys_l: Keys | None = None, keys_u: Keys | None = None) -> Fit:
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
    residuals = [y - sum(w * x for w, x in zip(lam, v)) for y, v in zip(y_labeled, f_l)]
    predicted = [sum(w * x for w, x in zip(lam, v)) for v in f_u]
    return Fit(lam, _var(residuals), _errors(residuals, keys_l or Keys.plain("labelled", n)),
               _errors(predicted, keys_u or Keys.plain("judged", big_n)), used_score=tuned and size > 1 and 1 in usable)


def ppi(y_labeled: Sequence[float], f_labeled: Sequence[Predictors], f_unlabeled: Sequence[Predictors],
        tuned: bool = True, keys_l: Keys | None = None, keys_u: Keys | None = None) -> Estimate:
    """The prediction-powered estimate from the teachers' labels y with the judge's predictors f where both exist,
    and the judge's predictors f on the distractors the teachers did not label. `keys_l`, `keys_u`: their items
    (default: every distractor its own)."""
    n, big_n = len(y_labeled), len(f_unlabeled)
    if n == 0:
        return Estimate(None, None, 0, big_n, "ppi++", reason="no distractor has both the teachers' and the judge's label")
    if big_n == 0 or (tuned and len(set(y_labeled)) == 1):  # nothing unlabelled, or labels all alike (lam 0)
        only = teachers_only(y_labeled, keys_l)
        return Estimate(only.rate, only.ci95, n, big_n, "ppi++", se=only.se, lam=0.0, note=only.note, df=only.df,
                        spread=only.spread)
    weights = fit(y_labeled, f_labeled, f_unlabeled, tuned, keys_l, keys_u)
    f_l, f_u = _vectors(f_labeled), _vectors(f_unlabeled)
    shift = sum(w * (_mean([v[j] for v in f_u]) - _mean([v[j] for v in f_l])) for j, w in enumerate(weights.lam))
    rate = _mean(y_labeled) + shift
    spread = _combined((1.0, weights.labelled), (1.0, weights.judged))
    se = spread.se
    scored = weights.used_score
    return Estimate(min(1.0, max(0.0, rate)), _interval(rate, se, spread.df), n, big_n, "ppi++" if tuned else "ppi", se=se,
                    lam=weights.lam[0], lam_score=weights.lam[1] if scored else None,
                    predictors="label and score" if scored else "label", note=_one_item(keys_l) if keys_l else None,
                    df=spread.df, spread=spread)


@dataclass(frozen=True)
class Labels:
    """One source's labels: teachers' share accepting per distractor, and the judge's predictors per distractor
    (its label, and its score where it scored every distractor of the source); `items`: each distractor's item
    (empty: every distractor its own)."""

    teachers: dict[int, float]
    judge: dict[int, tuple[float, ...]]
    items: dict[int, int] = field(default_factory=dict)
    unscored: list[int] = field(default_factory=list)  # distractors the judge labelled without a score, when it
    # scored others: its scores are then left out

    def unscored_note(self) -> str | None:
        if not self.unscored:
            return None
        shown = ", ".join(str(d) for d in self.unscored[:5]) + (", ..." if len(self.unscored) > 5 else "")
        return (f"the judge gave no score for {len(self.unscored)} of the source's {len(self.judge)} distractors it "
                f"labelled (distractor id {shown}), so its scores are left out and the estimate uses its labels")

    def keys(self, distractors: Sequence[int]) -> Keys:
        return Keys([("item", self.items[d]) for d in distractors] if self.items else None,
                    [("distractor", d) for d in distractors])

    def both(self) -> list[int]:
        return [d for d in self.teachers if d in self.judge]

    def judge_only(self) -> list[int]:
        return [d for d in self.judge if d not in self.teachers]

    def split(self) -> tuple[list[float], list[tuple[float, ...]], list[tuple[float, ...]]]:
        both = self.both()
        return ([self.teachers[d] for d in both], [self.judge[d] for d in both],
                [self.judge[d] for d in self.judge_only()])

    def ppi(self) -> Estimate:
        return ppi(*self.split(), keys_l=self.keys(self.both()), keys_u=self.keys(self.judge_only()))

    def teachers_only(self, distractors: Sequence[int] | None = None) -> Estimate:
        chosen = list(self.teachers) if distractors is None else list(distractors)
        return teachers_only([self.teachers[d] for d in chosen], self.keys(chosen))


def labels_by_source(rows, judge: str) -> dict[str, Labels]:
    """From report rows (RatingRow): per source, the teachers' share of accepts and the judge's predictors: its
    label, with its score beside it when it scored every distractor of the source and not all alike."""
    votes: dict[str, dict[int, list[bool]]] = defaultdict(lambda: defaultdict(list))
    judged: dict[str, dict[int, tuple[float, float | None]]] = defaultdict(dict)
    items: dict[int, int] = {}
    for r in rows:
        items[r.distractor_id] = r.item_id
        if r.kind == RaterKind.human:
            votes[r.source][r.distractor_id].append(bool(r.accepted))
        elif r.rater == judge:
            judged[r.source][r.distractor_id] = (1.0 if r.accepted else 0.0, r.score)
    found = {}
    for source in sorted(set(votes) | set(judged)):
        pairs = judged.get(source, {})
        scores = {s for _, s in pairs.values()}
        scored = None not in scores and len(scores) > 1
        unscored = sorted(d for d, (_, s) in pairs.items() if s is None) if scores - {None} else []
        found[source] = Labels({d: sum(v) / len(v) for d, v in votes.get(source, {}).items()},
                               {d: (f, float(s)) if scored and s is not None else (f,) for d, (f, s) in pairs.items()},
                               items, unscored)
    return found


def estimate_source(labels: Labels, pool: int | None = None) -> tuple[dict, Spread | None]:
    """`{rate, ci95, teacher_n, judge_n, method, ...}` and the teachers-only figure beside it, or why not; and each
    item's share of its error (for differences). `pool`: the source's distractors in all (default: those anyone
    rated).

    When the judge rated only part of the source, its labels speak for that part only: the estimate is then
    stratified, PPI++ on the judged part and the teachers' mean on the rest, weighted by their sizes, and needs
    teacher labels in both. (Without this, the teachers' labels of the unjudged part would be left out and the
    estimate would answer for the judged part alone, which may differ: a judge's failures cluster on some items.)"""
    only = labels.teachers_only()
    total = max(pool or 0, len(set(labels.teachers) | set(labels.judge)))
    unjudged = total - len(labels.judge)
    if not labels.teachers:
        combined = Estimate(None, None, 0, len(labels.judge), "ppi++",
                            reason="no teacher has rated this source: the judge's labels alone would carry its bias")
    elif not labels.judge:
        combined = Estimate(None, None, len(labels.teachers), 0, "ppi++",
                            reason="the judge rated none of this source's distractors")
    elif unjudged == 0:
        combined = labels.ppi()
    else:
        combined = _stratified(labels, total, unjudged)
    if (unscored := labels.unscored_note()) and combined.rate is not None:
        combined = replace(combined, note="; ".join(n for n in (combined.note, unscored) if n))
    return {**combined.as_json(), "teachers_only": only.as_json()}, combined.spread


def _stratified(labels: Labels, total: int, unjudged: int) -> Estimate:
    judged = total - unjudged
    part = labels.ppi()
    rest = [d for d in labels.teachers if d not in labels.judge]
    covers = f"the judge rated {judged} of the source's {total} distractors"
    if part.rate is None or part.spread is None or len(rest) < 2:
        return Estimate(None, None, len(labels.teachers), part.judge_n, "ppi++, stratified", reason=(
            f"{covers}, and its labels speak for those only; teachers rated {len(rest)} of the other {unjudged} (an "
            f"estimate needs 2 or more there) and {part.teacher_n} of the judged ones (it needs 1 or more): have "
            "teachers rate more of the part the judge left out, or judge all of it"))
    other = labels.teachers_only(rest)
    assert other.rate is not None and other.spread is not None
    share = judged / total
    rate = share * part.rate + (1 - share) * other.rate
    spread = _combined((share, part.spread), (1 - share, other.spread))
    se = spread.se
    notes = [f"{covers}: the other {unjudged} are estimated from the teachers' {len(rest)} labels of them alone, and "
             "the two parts weighted by their sizes"] + sorted({n for n in (part.note, other.note) if n})
    return Estimate(rate, _interval(rate, se, spread.df), len(labels.teachers), part.judge_n, "ppi++, stratified", se=se,
                    lam=part.lam, lam_score=part.lam_score, predictors=part.predictors, note="; ".join(notes),
                    df=spread.df, spread=spread)


def estimates(rows, judge: str, pools: dict[str, int] | None = None) -> tuple[dict[str, dict], dict[str, dict]]:
    """Per source its estimate; and per pair of sources the difference with its 95 % interval ("is it real?"), its
    error summed item by item (distractors of both sources in one item go together). `pools`: each source's
    distractors in all."""
    found = {source: estimate_source(labels, (pools or {}).get(source))
             for source, labels in labels_by_source(rows, judge).items()}
    per_source = {source: estimate for source, (estimate, _) in found.items()}
    differences = {}
    for a, b in combinations(sorted(per_source), 2):
        (ea, spread_a), (eb, spread_b) = found[a], found[b]
        if ea["rate"] is None or eb["rate"] is None or spread_a is None or spread_b is None:
            continue
        spread = _combined((1.0, spread_a), (-1.0, spread_b))
        diff, margin = ea["rate"] - eb["rate"], t975(spread.df) * spread.se
        low, high = diff - margin, diff + margin
        differences[f"{a} - {b}"] = {"difference": diff, "ci95": [low, high], "excludes_zero": low > 0 or high < 0}
    return per_source, differences


def _fewest(variance: float, fixed: float, width: float, per_item: float) -> int | None:
    """The fewest teacher-labelled distractors n whose interval, t(df) sqrt(variance / n + fixed) each side, is at
    most `width` wide: df the items of n distractors (`per_item` to an item) less one. None when no n is enough
    (the fixed part alone is too wide)."""
    def enough(n: int) -> bool:
        return t975(max(1.0, n / per_item - 1)) ** 2 * (variance / n + fixed) <= (width / 2) ** 2 * (1 + 1e-9)

    high = 1
    while not enough(high):
        high *= 2
        if high > 10 ** 9:
            return None
    low = high // 2  # not enough (or 0)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


def teachers_needed(labels: Labels, width: float, with_judge: bool, pool: int | None = None) -> dict:
    """More teacher-labelled distractors this source needs for a 95 % interval of `width`, the current labels'
    spread, how much grouping them by item widens it and how many distractors an item has, taken as they will stay.
    With the judge: its judge-only labels and lam as now, and never more than the teachers alone would need (lam = 0
    is the teachers' own estimate). `pool`: the source's distractors in all; a need beyond them is not reachable by
    rating more."""
    have = len(labels.teachers)
    y = list(labels.teachers.values())
    only = labels.teachers_only()
    spread = _var(y) if len(y) >= 2 else 0.25  # unknown: the widest a share can spread
    effect = (only.se ** 2) / (spread / len(y)) if len(y) >= 2 and spread > 0 and only.se else 1.0
    if (centre := _alike_centre(y)) is not None:  # all alike: no spread shown, which is not none (as in the interval)
        spread, effect = centre * (1 - centre), 1.0
    per_item = len(y) / len(set(labels.keys(list(labels.teachers)).used)) if y else 1.0
    need = _fewest(effect * spread, 0.0, width, per_item) if spread > 0 else 1
    note = None
    if with_judge and not labels.judge:
        note = "the judge rated none of this source: the teachers' figure"
    elif with_judge and pool is not None and len(labels.judge) < pool:  # its labels speak for part of the source
        note = (f"the judge rated {len(labels.judge)} of the source's {pool} distractors: the teachers' figure (judge "
                "all of it to plan with it)")
    elif with_judge:
        y_l, f_l, f_u = labels.split()
        if f_u and len(set(y_l)) > 1:  # (labels all alike cannot follow the judge's: lam 0, the teachers' figure)
            weights = fit(y_l, f_l, f_u, keys_l=labels.keys(labels.both()), keys_u=labels.keys(labels.judge_only()))
            residual = weights.residual * weights.design_effect(len(y_l)) if len(y_l) >= 2 else 0.25
            combined = _fewest(residual, weights.judge_part, width, per_item) if residual > 0 else 1
            if combined is not None and need is not None:
                need = min(need, combined + (have - len(y_l)))  # teachers' labels without the judge's count too
    more = max(0, need - have) if need is not None else None
    reachable = pool is None or need is None or need <= pool
    return {"have": have, "need": need, "more": more, "reachable": reachable, "pool": pool,
            **({"note": note} if note else {})}
