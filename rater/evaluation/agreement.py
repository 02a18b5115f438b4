"""Agreement statistics: Wilson intervals, Cohen's kappa, Krippendorff's alpha (nominal), precision and recall."""

import math
from collections import Counter
from typing import Sequence


def wilson(accepted: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion, within [0, 1] and always holding the rate itself (rounding put
    the upper end at 0.9999999999999999 for a rate of 1)."""
    if total == 0:
        return (0.0, 0.0)
    p = accepted / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)))


UNDEFINED = ("undefined (-) when every label is the same: with no variation there is nothing to agree on beyond "
             "chance, as for Krippendorff's alpha")


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float | None:
    """Cohen's kappa of two raters' accept/reject labels on the same distractors; None when undefined: no shared
    labels, or both raters giving one and the same label to everything (chance agreement is then 1, as alpha's
    expected disagreement is 0)."""
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    pa, pb = sum(a) / n, sum(b) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def kappa_of_table(table: dict[tuple[bool, bool], int]) -> float | None:
    """Cohen's kappa from counts of (first rater's label, second rater's label), as `cohen_kappa` of the pairs."""
    n = sum(table.values())
    if n == 0:
        return None
    observed = (table.get((True, True), 0) + table.get((False, False), 0)) / n
    pa = (table.get((True, True), 0) + table.get((True, False), 0)) / n
    pb = (table.get((True, True), 0) + table.get((False, True), 0)) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def krippendorff_alpha(units: Sequence[Sequence[bool]]) -> float | None:
    """Nominal Krippendorff's alpha; `units` holds, per distractor, the labels of whoever rated it."""
    pairable = [u for u in units if len(u) >= 2]
    n = sum(len(u) for u in pairable)
    if n <= 1:
        return None
    coincidence: Counter[tuple[bool, bool]] = Counter()
    for unit in pairable:
        counts = Counter(unit)
        m = len(unit)
        for c in counts:
            for k in counts:
                pairs = counts[c] * (counts[k] - (c == k))
                coincidence[c, k] += pairs / (m - 1)  # type: ignore[assignment]  # (a Counter of floats)
    totals: Counter[bool] = Counter()
    for (c, _), value in coincidence.items():
        totals[c] += value
    observed = sum(v for (c, k), v in coincidence.items() if c != k)
    expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k) / (n - 1)
    if expected == 0:
        return None
    return 1 - observed / expected


def precision_recall(predicted: Sequence[bool], truth: Sequence[bool]) -> tuple[float | None, float | None]:
    """Precision and recall of "accept"."""
    tp = sum(p and t for p, t in zip(predicted, truth))
    predicted_yes, true_yes = sum(predicted), sum(truth)
    return (tp / predicted_yes if predicted_yes else None, tp / true_yes if true_yes else None)
