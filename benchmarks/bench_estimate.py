"""Spending teacher time where it counts, simulated (teachers with latent labels, judges with known error and
bias), with the project's own estimator (rater/evaluation/estimate.py), rule fit (rater/evaluation/calibration.py)
and uncertainty measure (rater/evaluation/uncertainty.py):

1. coverage: the combined estimate's 95 % interval holds the true acceptance in how many of 500 repetitions
   (2,000 distractors rated by a judge that accepts too much, 200 of them also by teachers);
2. the same interval width from fewer teacher ratings: how many teacher-rated distractors the teachers-only figure
   needs for the width the combined estimate reaches with 200;
3. calibrating a judge that accepts too much to a kappa of 0.41 against the teachers: teacher ratings needed when
   teachers rate the items the judge is least sure about first (re-measured after each batch against the rule
   fitted so far, as `rater calibrate --save` then `rater rate --order uncertain` do) against a random order.

Run: .venv/bin/python benchmarks/bench_estimate.py [--repetitions 500]
"""

import argparse
import math
import random
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from synthetic import header  # noqa: E402

from rater.evaluation.agreement import cohen_kappa  # noqa: E402
from rater.evaluation.calibration import THRESHOLDS, Case, best_rule, predict  # noqa: E402
from rater.evaluation.estimate import Estimate, Keys, ppi, teachers_only  # noqa: E402
from rater.evaluation.uncertainty import committee, distractor_uncertainty, item_priority  # noqa: E402
from rater.judge.scoring import Acceptance  # noqa: E402

TRUE_RATE = 0.426  # the teachers' acceptance in the study this project follows (SPEC)


def coverage_and_width(repetitions: int, judged: int, rated: int, good: float, bad: float, seed: int = 1) -> None:
    """The judge accepts `good` of what teachers accept and `bad` of what they reject (labels only, no scores)."""
    rng = random.Random(seed)
    runs = []
    for _ in range(repetitions):
        truth = [rng.random() < TRUE_RATE for _ in range(judged)]
        labels = [1.0 if rng.random() < (good if t else bad) else 0.0 for t in truth]
        labelled = set(rng.sample(range(judged), rated))
        y = [float(truth[i]) for i in sorted(labelled)]
        runs.append((ppi(y, [labels[i] for i in sorted(labelled)],
                         [labels[i] for i in range(judged) if i not in labelled]), teachers_only(y)))
    summary(f"a judge giving labels only, accepting {good:.0%} of the good and {bad:.0%} of the bad distractors",
            runs, TRUE_RATE, rated)


def holds(estimates: list[Estimate], truth: float) -> float:
    return sum(e.ci95 is not None and e.ci95[0] <= truth <= e.ci95[1] for e in estimates) / len(estimates)


def width(estimates: list[Estimate]) -> float:
    return statistics.mean(e.ci95[1] - e.ci95[0] for e in estimates if e.ci95 is not None)


def summary(title: str, runs: list[tuple[Estimate, Estimate]], truth: float, rated: int,
            one_by_one: list[tuple[Estimate, Estimate]] | None = None) -> None:
    """Coverage of both intervals, mean widths, and the teacher ratings the teachers-only figure needs for the
    combined width (its variance falls as 1 / n). `one_by_one`: the same estimates with distractors taken one by
    one instead of by item, for comparison."""
    se, se_alone = statistics.mean(e.se or 0.0 for e, _ in runs), statistics.mean(a.se or 0.0 for _, a in runs)
    needed = math.ceil(rated * (se_alone / se) ** 2)
    print(f"   {title}:")
    print(f"     1. coverage over {len(runs)} repetitions: combined {holds([e for e, _ in runs], truth):.1%}, teachers "
          f"only {holds([a for _, a in runs], truth):.1%}"
          + (f" (taking distractors one by one, not by item: combined {holds([e for e, _ in one_by_one], truth):.1%}, "
             f"teachers only {holds([a for _, a in one_by_one], truth):.1%})" if one_by_one else ""))
    print(f"     2. mean width: combined {width([e for e, _ in runs]):.1%} with {rated} teacher ratings, teachers only "
          f"{width([a for _, a in runs]):.1%}; the teachers-only figure needs about {needed} teacher ratings for the combined "
          f"width: {rated} is {1 - rated / needed:.1%} fewer")


LATENT_RATE = 0.5 * math.erfc(0.19 / math.sqrt(2))  # P(quality > 0.19): the simulated teachers' acceptance, 42.5 %


def scored_judges(repetitions: int, items: int, rated_items: int, noise: float, members: int, seed: int = 2,
                  item_sd: float = 0.0) -> None:
    """A lenient judge (or a panel of `members` such judges, their mean score) scoring every distractor as in
    `simulated_items` and accepting by the SPEC's weighted limit; teachers rate `rated_items` whole items. The
    same data estimated from the judge's labels alone and from its labels and scores. `item_sd`: the part of a
    distractor's quality (sd) its item gives all its distractors (an easy question), the rest its own."""
    rng = random.Random(seed)
    runs: dict[str, list[tuple[Estimate, Estimate]]] = {"label": [], "label and score": []}
    naive: dict[str, list[tuple[Estimate, Estimate]]] = {"label": [], "label and score": []}
    kappas, rates = [], []
    rule = Acceptance()
    own = math.sqrt(1 - item_sd ** 2)
    for _ in range(repetitions):
        truth, label, score = [], [], []
        for _ in range(items):
            shared = rng.gauss(0, item_sd) if item_sd else 0.0
            qualities = [shared + own * rng.gauss(0, 1) for _ in range(4)]
            scores = [statistics.mean(min(5.0, max(1.0, round((4.2 + q + rng.gauss(0, noise)) * 2) / 2))
                                      for _ in range(members)) for q in qualities]
            limit = rule.limit(scores)
            truth += [q > 0.19 for q in qualities]
            score += scores
            label += [1.0 if s > limit else 0.0 for s in scores]
        rated = set(rng.sample(range(items), rated_items))
        mine = [d for d in range(4 * items) if d // 4 in rated]
        others = [d for d in range(4 * items) if d // 4 not in rated]
        y = [float(truth[d]) for d in mine]
        keys_l, keys_u = (Keys([d // 4 for d in ds], ds) for ds in (mine, others))
        f_l = {"label": [label[d] for d in mine], "label and score": [(label[d], score[d]) for d in mine]}
        f_u = {"label": [label[d] for d in others], "label and score": [(label[d], score[d]) for d in others]}
        alone, alone_naive = teachers_only(y, keys_l), teachers_only(y)
        for predictors in runs:
            runs[predictors].append((ppi(y, f_l[predictors], f_u[predictors], keys_l=keys_l, keys_u=keys_u), alone))
            naive[predictors].append((ppi(y, f_l[predictors], f_u[predictors]), alone_naive))
        kappas.append(cohen_kappa([bool(x) for x in label], truth))
        rates.append(statistics.mean(label))
    who = "a judge" if members == 1 else f"a panel of {members} such judges (mean score)"
    grouped = f", items sharing sd {item_sd} of their distractors' quality" if item_sd else ""
    print(f"   {who}, score noise sd {noise}{grouped}: accepts {statistics.mean(rates):.1%}, kappa against the teachers "
          f"{statistics.mean(k for k in kappas if k is not None):.2f}")
    for predictors, pairs in runs.items():
        summary(f"estimated from its {predictors}", pairs, LATENT_RATE, 4 * rated_items,
                naive[predictors] if item_sd else None)


def simulated_items(rng: random.Random, items: int, noise: float, per_item: int = 4) -> list[list[tuple[float, bool]]]:
    """(judge score, teachers' label) per distractor: a latent quality decides the label (about 43 % accepted);
    the judge's 1-5 score follows it with `noise` (sd) and 1.2 points too high."""
    study = []
    for _ in range(items):
        row = []
        for _ in range(per_item):
            quality = rng.gauss(0, 1)
            score = 3.0 + 1.0 * quality + 1.2 + rng.gauss(0, noise)
            row.append((min(5.0, max(1.0, round(score * 2) / 2)), quality > 0.19))
        study.append(row)
    return study


RULES = [Acceptance(rule="threshold", threshold=t) for t in THRESHOLDS]  # fixed limits: the grid's fast half


def fit_expected(cases: list[Case], population) -> Acceptance:
    """`rater calibrate`'s fit: the highest kappa expected over every distractor the judge scored."""
    return best_rule(cases, population, RULES)[0]


def ratings_to_reach(study, order: str, rng: random.Random, horizon: int, target: float = 0.41) -> int | None:
    """Teachers rate one item at a time, the rule is fitted after each and, in the uncertain order, the items
    re-ordered as `rater rate --order uncertain` would order them then (rater/evaluation/uncertainty.py: the
    committee of calibrations, then closeness to the fitted limit): teacher-rated distractors until the fitted rule
    reaches `target` kappa on the whole study for good (never falls below it again within `horizon` items); None
    when it is below at the end."""
    cases = [[Case(i, s, [x for x, _ in row], False, t) for s, t in row] for i, row in enumerate(study)]
    everything = [c for row in cases for c in row]
    population = [(c.score, c.item_scores) for c in everything]
    truth = [c.truth for c in everything]
    left = list(range(len(study)))
    rng.shuffle(left)
    labelled: list[Case] = []
    rule = Acceptance()  # the judge's default weighted limit until a rule is fitted
    last_below, reached = 0, False
    while left and len(labelled) < horizon * len(study[0]):
        if order == "uncertain" and labelled:
            fitted = committee(labelled, population, rules=RULES)
            left.sort(key=lambda i: -item_priority([distractor_uncertainty(
                c.score, rule.limit(c.item_scores), c.item_scores, fitted) for c in cases[i]]))
        labelled += cases[left.pop(0)]
        if len({c.truth for c in labelled}) == 2:
            rule = fit_expected(labelled, population)
        kappa = cohen_kappa([predict(rule, c) for c in everything], truth)
        reached = kappa is not None and kappa >= target
        if not reached:
            last_below = len(labelled)
    return last_below + len(study[0]) if reached else None


def calibration_order(seeds: range, items: int, noise: float, shuffles: int, horizon: int = 100) -> None:
    """Each study is rated in `shuffles` different random orders (its items shuffled; the uncertain order starts
    from the same shuffle): one shuffle's figures move by about 14 % of the mean between shuffles. A study whose
    calibration falls short of 0.41 even with every teacher label (the fit never picks the one limit that would
    reach it) is out of reach of any order and is counted apart."""
    start, best = [], []
    needed: dict[str, list[tuple[bool, int | None]]] = {"random": [], "uncertain": []}
    stuck = 0
    for seed in seeds:
        study = simulated_items(random.Random(seed), items, noise)
        cases = [Case(i, s, [x for x, _ in row], False, t) for i, row in enumerate(study) for s, t in row]
        truth = [c.truth for c in cases]
        start.append(cohen_kappa([predict(Acceptance(), c) for c in cases], truth))
        best.append(max(cohen_kappa([predict(rule, c) for c in cases], truth) or -1.0 for rule in RULES))
        if best[-1] < 0.41:  # no fixed limit reaches it at all
            continue
        everyone = fit_expected(cases, [(c.score, c.item_scores) for c in cases])
        reachable = (cohen_kappa([predict(everyone, c) for c in cases], truth) or -1.0) >= 0.41
        stuck += not reachable
        for shuffle in range(shuffles):
            for order, found in needed.items():
                found.append((reachable, ratings_to_reach(study, order, random.Random(1000 * (shuffle + 1) + seed),
                                                          horizon)))
    cap = horizon * 4
    studies = len(needed["random"]) // shuffles
    print(f"   score noise sd {noise}: default rule kappa {statistics.median(start):.2f}, best fixed limit "
          f"{statistics.median(best):.2f}; in {studies} of {len(seeds)} studies (seeds {seeds.start}-{seeds.stop - 1}) "
          "a fixed limit reaches 0.41, and in "
          f"{stuck} of them the calibration on every teacher label does not (out of reach of any order); "
          f"{shuffles} shuffles each:")
    for scope, keep in (("every such study", lambda reachable: True), ("the studies within reach", bool)):
        figures = {}
        for order, found in needed.items():
            counts = sorted(cap if n is None else n for reachable, n in found if keep(reachable))
            figures[order] = (statistics.mean(counts), statistics.median(counts), counts[int(0.9 * len(counts))])
            missed = sum(n is None for reachable, n in found if keep(reachable))
            print(f"     {scope}, {order} order: teacher-rated distractors until kappa 0.41 for good: mean "
                  f"{figures[order][0]:.1f}, median {figures[order][1]:.0f}, 90th percentile {figures[order][2]}"
                  f"{f' (not within {cap} in {missed} runs, counted as {cap})' if missed else ''}")
        print(f"     {scope}, uncertain first: " + ", ".join(
            f"{1 - u / r:.1%} fewer by the {name}" for name, u, r in zip(("mean", "median", "90th percentile"),
                                                                           figures["uncertain"], figures["random"])))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repetitions", type=int, default=500, help="of parts 1-2 (0: skip them)")
    parser.add_argument("--studies", type=int, default=80, help="of part 3 (0: skip it)")
    parser.add_argument("--shuffles", type=int, default=3, help="random orders of each study in part 3")
    parser.add_argument("--first-seed", type=int, default=0, help="of part 3's studies (another set: e.g. 80)")
    args = parser.parse_args()
    print(header("estimate"))
    if args.repetitions:
        print("1-2. combined estimates: 2,000 distractors rated by the judge, 200 of them also by teachers, true "
              f"acceptance {TRUE_RATE:.1%}")
        for good, bad in ((0.90, 0.45), (0.90, 0.10)):
            coverage_and_width(args.repetitions, 2000, 200, good, bad)
        print("   judges that score 1-5 (scores 1.2 points too high, the SPEC's weighted limit: lenient like GPT-4 in the "
              "study), 500 items x 4 distractors, teachers rating 50 whole items:")
        for noise, members in ((1.0, 1), (0.8, 1), (1.2, 3)):
            scored_judges(args.repetitions, 500, 50, noise, members)
        print("   the same with easy and hard questions: an item gives its four distractors a shared part of their "
              "quality, and the intervals sum the error item by item (cluster-robust):")
        scored_judges(args.repetitions, 500, 50, 0.8, 1, item_sd=0.7)
    if args.studies:
        print(f"3. calibrating a judge (scores 1.2 points too high) to kappa 0.41, {args.studies} studies of 300 items x 4 "
              "distractors, teachers rating one item at a time, up to 100 items:")
        for noise in (1.1, 1.2):
            calibration_order(range(args.first_seed, args.first_seed + args.studies), 300, noise, args.shuffles)
    

if __name__ == "__main__":
    main()
