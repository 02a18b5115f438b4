"""Estimates that combine a judge's labels with the teachers' (prediction-powered inference, PPI++), their
intervals, differences between sources, and `rater plan`, against hand-computed figures on fixed data."""

import json
import math

import pytest
from sqlmodel import Session

from rater.core.domain import Judgement
from rater.evaluation.estimate import ppi, teachers_only
from rater.store.ratings import get_or_create_rater, save_judgements
from tests.test_report import add_items

Z = 1.959964
T = {2: 4.302653, 3: 3.182446, 6: 2.446912, 9: 2.262157}  # Student's t, 97.5 % point, by degrees of freedom


def welch(*parts: tuple[float, float]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of variances (variance, df)."""
    return sum(v for v, _ in parts) ** 2 / sum(v * v / df for v, df in parts)


def label(session, name: str, kind: str, labels: dict[int, tuple[int, bool]]) -> None:
    """labels: distractor id -> (item id, accepted)."""
    rater_id = get_or_create_rater(session, name=name, kind=kind).id
    for distractor_id, (item_id, accepted) in labels.items():
        save_judgements(session, rater_id=rater_id, item_id=item_id, judgements=[Judgement(distractor_id, accepted)])


@pytest.fixture
def study(engine):
    """Source s: ten distractors; a teacher labels the first four (1, 0, 1, 1), the judge all ten (1, 0, 0, 1 on
    those, then 1, 1, 0, 1, 0, 1). Source t: four distractors, teacher (0, 0, 1, 0), judge (0, 0, 1, 1). Source u:
    only the judge. Source v: only the teacher."""
    with Session(engine) as session:
        ids = add_items(session, [[(f"s{k}", "s") for k in range(10)], [(f"t{k}", "t") for k in range(4)],
                                  [("u0", "u"), ("u1", "u")], [("v0", "v"), ("v1", "v")]])
        s, t, u, v = ids
        item = {d: n + 1 for n, group in enumerate(ids) for d in group}

        def of(distractors, values):
            return {d: (item[d], bool(v)) for d, v in zip(distractors, values)}

        label(session, "anna", "human", {**of(s[:4], [1, 0, 1, 1]), **of(t, [0, 0, 1, 0]), **of(v[:1], [1])})
        label(session, "gpt", "llm", {**of(s, [1, 0, 0, 1, 1, 1, 0, 1, 0, 1]), **of(t, [0, 0, 1, 1]), **of(u, [1, 0])})
        session.commit()


def test_the_estimate_matches_a_hand_computed_ppi(cli, study):
    data = json.loads(cli("report", "--format", "json", "--estimate-with", "gpt").stdout)
    e = data["sources"]["s"]["estimate"]
    # by hand: n 4, N 6; mean_L y .75, mean_L f .5, mean_U f 4/6; var f (all ten) 0.26667; cov_L(y, f) 1/6
    # lam = (1/6) / ((1 + 4/6) * 0.26667) = .375; rate = .75 + .375 (4/6 - .5) = .8125
    # se^2 = var_L(y - lam f) / 4 + lam^2 var_U(f) / 6 = .171875 / 4 + .140625 * .26667 / 6 = .04921875
    # (one item: distractor by distractor); degrees of freedom: 3 and 5, together 3.89 (Welch): t(3)
    assert e["method"] == "ppi++" and (e["teacher_n"], e["judge_n"]) == (4, 6)
    assert e["lam"] == pytest.approx(0.375) and e["rate"] == pytest.approx(0.8125)
    assert e["se"] == pytest.approx(math.sqrt(0.04921875))
    df_s = welch((0.171875 / 4, 3), (0.140625 * 0.26666667 / 6, 5))
    assert e["df"] == pytest.approx(df_s) and 3 < df_s < 4
    assert e["ci95"] == pytest.approx([0.8125 - T[3] * math.sqrt(0.04921875), 1.0])  # clipped at 1
    only = e["teachers_only"]
    assert only["rate"] == 0.75 and only["se"] == pytest.approx(math.sqrt(0.25 / 4))
    assert data["sources"]["t"]["estimate"]["judge_n"] == 0  # the judge adds nothing unlabelled: the teachers' mean
    assert data["sources"]["t"]["estimate"]["rate"] == 0.25 and data["sources"]["t"]["estimate"]["lam"] == 0.0
    assert "u" not in data["sources"]  # no teacher label: the report's sources are the teachers'
    difference = data["estimate_differences"]["s - t"]
    se = math.sqrt(0.04921875 + 0.25 / 4)  # t: four teacher labels (0, 0, 1, 0), var .25, 3 degrees of freedom
    assert 6 < welch((0.04921875, df_s), (0.25 / 4, 3)) < 7  # t(6)
    assert difference["difference"] == pytest.approx(0.8125 - 0.25)
    assert difference["ci95"] == pytest.approx([0.5625 - T[6] * se, 0.5625 + T[6] * se])
    assert difference["excludes_zero"] is False  # .56 apart, yet 4 teacher labels each cannot show it is real
    table = " ".join(cli("report", "--estimate-with", "gpt").output.split())
    assert "Estimates with gpt" in table and "81.2%" in table and "Differences between sources" in table


def test_ppi_is_narrower_than_the_teachers_alone_when_the_judge_follows_them():
    y = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0] * 3
    f = list(y)
    f[0] = 0.0  # one disagreement
    unlabeled = [1.0, 0.0] * 150
    combined, alone = ppi(y, f, unlabeled), teachers_only(y)
    assert combined.se < alone.se and 0.4 < combined.rate < 0.6


def test_sources_without_teachers_or_judge_say_why_and_bad_input_is_refused(cli, study):
    data = json.loads(cli("report", "--format", "json", "--estimate-with", "gpt").stdout)
    assert data["sources"]["v"]["estimate"]["rate"] is None
    assert "rated none of this source" in data["sources"]["v"]["estimate"]["reason"]
    for args, message in ((("--estimate-with", "nosuch"), "nosuch"), (("--estimate-with", "anna"), "is a teacher")):
        result = cli("report", *args, ok=False)
        assert result.exit_code == 2 and message in " ".join(result.output.replace("│", " ").split())


def test_plan_says_how_many_more_teacher_ratings_a_width_needs(cli, study):
    plan = json.loads(cli("plan", "--target-width", "0.4", "--estimate-with", "gpt", "--format", "json").stdout)
    s = plan["sources"]["s"]
    # teachers only: var(y) .25, one distractor to an item (all in one item: taken one by one): the fewest n with
    # t(n - 1)^2 .25 / n <= (.4 / 2)^2: 27 (26: 2.0595^2 * .25 / 26 = .0408 > .04; 27: 2.0555^2 * .25 / 27 = .0391)
    assert s["teachers_only"] == {"have": 4, "need": 27, "more": 23, "reachable": False, "pool": 10}
    assert 2.059539 ** 2 * 0.25 / 26 > 0.2 ** 2 >= 2.055529 ** 2 * 0.25 / 27
    # with the judge: residual variance .171875 over n, plus the judge-only part lam^2 var_U(f) / N = .00625: at
    # n 27 already too wide, more than the teachers alone need, and the estimate can always do without the judge
    # (lam 0): 27
    assert 2.055529 ** 2 * (0.171875 / 27 + 0.140625 * (4 / 15) / 6) > 0.2 ** 2
    assert s["with_judge"]["need"] == s["teachers_only"]["need"]
    narrow = json.loads(cli("plan", "--target-width", "0.2", "--estimate-with", "gpt", "--format", "json").stdout)
    assert narrow["sources"]["s"]["teachers_only"]["reachable"] is False  # 100 needed, the source has 10
    assert narrow["sources"]["s"]["teachers_only"]["pool"] == 10
    table = " ".join(cli("plan", "--target-width", "0.2", "--estimate-with", "gpt").output.split())
    assert "20 percentage points wide" in table and "never above the teachers' own" in table
    for width in ("0", "1.5"):
        result = cli("plan", "--target-width", width, ok=False)
        assert result.exit_code == 2 and "not a width between 0 and 1" in " ".join(result.output.split())


def test_the_combined_interval_holds_the_truth_at_its_nominal_rate_in_a_small_simulation():
    """The benchmark's coverage check at a small size (benchmarks/bench_estimate.py runs 500 repetitions): a judge
    that accepts far too much, 300 judge-only and 60 teacher-labelled distractors per repetition, seeded."""
    import random

    rng, truth_rate, held = random.Random(5), 0.426, 0
    for _ in range(300):
        truth = [rng.random() < truth_rate for _ in range(360)]
        labels = [1.0 if rng.random() < (0.9 if t else 0.45) else 0.0 for t in truth]
        estimate = ppi([float(t) for t in truth[:60]], labels[:60], labels[60:])
        held += estimate.ci95[0] <= truth_rate <= estimate.ci95[1]
    assert 0.92 <= held / 300 <= 0.98


SCORED_Y = [1, 0, 1, 1, 0, 0]  # the teachers' labels of the first six distractors of source w
SCORED_F = [(1, 4.5), (1, 3), (1, 4), (0, 2.5), (0, 1.5), (1, 3.5),  # the judge's (label, score): six shared,
            (1, 5), (0, 2), (1, 4), (0, 3), (1, 3.5), (0, 1), (1, 4.5), (0, 2.5)]  # eight judge-only


def scored_study(engine, missing_score: bool = False) -> None:
    with Session(engine) as session:
        (w,) = add_items(session, [[(f"w{k}", "w") for k in range(len(SCORED_F))]])
        teacher = get_or_create_rater(session, name="anna", kind="human").id
        judge = get_or_create_rater(session, name="gpt", kind="llm").id
        save_judgements(session, rater_id=teacher, item_id=1,
                        judgements=[Judgement(d, bool(y)) for d, y in zip(w, SCORED_Y)])
        save_judgements(session, rater_id=judge, item_id=1, judgements=[
            Judgement(d, bool(f), score=None if missing_score and d == w[-1] else s, limit=2.75)
            for d, (f, s) in zip(w, SCORED_F)])
        session.commit()


def test_a_judge_that_scored_every_distractor_lends_its_scores_to_the_estimate(cli, engine):
    """Its label says nothing here (accepted alike by the teachers or not: cov 0), its score does. By hand (numpy,
    sample covariances): cov(f) over all 14 = [[.263736, .505495], [.505495, 1.407967]], cov_L(f, y) = (0, .3);
    lam = ((1 + 6/8) cov(f))^-1 cov_L(f, y) = (-.748279, .390407); rate = mean_L(y) + lam . (mean_U(f) - mean_L(f))
    = .632847; se^2 = var_L(y - lam . f) / 6 + lam' cov_U(f) lam / 8 = .0296308 (.0200385 + .0095922), with 5 and 7
    degrees of freedom (one item: distractor by distractor), together 9.4 (Welch): t(9)."""
    scored_study(engine)
    e = json.loads(cli("report", "--format", "json", "--estimate-with", "gpt").stdout)["sources"]["w"]["estimate"]
    assert e["predictors"] == "label and score" and (e["teacher_n"], e["judge_n"]) == (6, 8)
    assert e["lam"] == pytest.approx(-0.748279, abs=1e-6) and e["lam_score"] == pytest.approx(0.390407, abs=1e-6)
    assert e["rate"] == pytest.approx(0.632847, abs=1e-6) and e["se"] == pytest.approx(math.sqrt(0.0296308), abs=1e-6)
    assert 9 < welch((0.0200385, 5), (0.0095922, 7)) < 10
    assert e["ci95"] == pytest.approx([0.632847 - T[9] * math.sqrt(0.0296308), 1.0], abs=1e-6)  # clipped at 1
    assert e["se"] < e["teachers_only"]["se"]  # the label alone gives lam 0: the teachers' own interval
    labels_only = ppi([float(y) for y in SCORED_Y], [f for f, _ in SCORED_F[:6]], [f for f, _ in SCORED_F[6:]])
    assert labels_only.lam == 0.0 and labels_only.se == pytest.approx(e["teachers_only"]["se"])
    table = cli("report", "--estimate-with", "gpt", "--format", "markdown").output
    assert "| from the judge's labels and scores; the teachers' labels come from one item" in table
    # rater plan with the scores: residual var_L(y - lam . f) = .120231, judge-only part .0095922; for a width of .6
    # the fewest n with t(n - 1)^2 (.120231 / n + .0095922) <= .3^2: 13, against 16 with t(n - 1)^2 .3 / n alone
    for n, t, enough in ((12, 2.200985, False), (13, 2.178813, True)):
        assert (t * t * (0.120231 / n + 0.0095922) <= 0.09) is enough
    for n, t, enough in ((15, 2.144787, False), (16, 2.131450, True)):
        assert (t * t * 0.3 / n <= 0.09) is enough
    plan = json.loads(cli("plan", "--target-width", "0.6", "--estimate-with", "gpt", "--format", "json").stdout)
    assert plan["sources"]["w"]["teachers_only"]["need"] == 16 and plan["sources"]["w"]["with_judge"]["need"] == 13


def test_a_judge_that_left_a_score_out_is_estimated_from_its_labels(cli, engine):
    scored_study(engine, missing_score=True)
    e = json.loads(cli("report", "--format", "json", "--estimate-with", "gpt").stdout)["sources"]["w"]["estimate"]
    assert e["predictors"] == "label" and e["lam_score"] is None and e["lam"] == 0.0 and e["rate"] == 0.5
    assert "the judge gave no score for 1 of the source's 14 distractors it labelled (distractor id 14)" in e["note"]


def test_the_scores_narrow_the_interval_of_a_lenient_judge_and_it_still_holds_the_truth():
    """The benchmark's scored judge at a small size (benchmarks/bench_estimate.py: 500 repetitions of 2,000
    distractors): scores 1.2 points too high with noise, labels by the SPEC's weighted limit (it accepts about 78 %,
    the teachers 42.5 %); 240 judge-only and 80 teacher-labelled distractors per repetition, seeded."""
    import random

    from rater.judge.scoring import Acceptance

    rng, rule, truth_rate = random.Random(9), Acceptance(), 0.5 * math.erfc(0.19 / math.sqrt(2))
    held, narrower = 0, 0
    for _ in range(300):
        truth, f = [], []
        for _ in range(80):
            qualities = [rng.gauss(0, 1) for _ in range(4)]
            scores = [min(5.0, max(1.0, round((4.2 + q + rng.gauss(0, 0.8)) * 2) / 2)) for q in qualities]
            truth += [float(q > 0.19) for q in qualities]
            f += [(1.0 if s > rule.limit(scores) else 0.0, s) for s in scores]
        combined = ppi(truth[:80], f[:80], f[80:])
        held += combined.ci95[0] <= truth_rate <= combined.ci95[1]
        narrower += combined.se < ppi(truth[:80], [x for x, _ in f[:80]], [x for x, _ in f[80:]]).se
    assert 0.92 <= held / 300 <= 0.98 and narrower / 300 > 0.9


def partly_judged(engine, rest: list[int]) -> None:
    """Source p, eight distractors: the judge labels the first six (1, 0, 1, 1, 0, 1), anna the first two (1, 0)
    and of the last two, which the judge left out, `rest`."""
    with Session(engine) as session:
        (p,) = add_items(session, [[(f"p{k}", "p") for k in range(8)]])
        label(session, "gpt", "llm", {d: (1, bool(f)) for d, f in zip(p, [1, 0, 1, 1, 0, 1])})
        label(session, "anna", "human", {d: (1, bool(y)) for d, y in zip(p[:2] + p[6:6 + len(rest)], [1, 0] + rest)})
        session.commit()


def test_a_judge_that_rated_part_of_a_source_speaks_for_that_part_only(cli, engine):
    """By hand: judged part (6 of 8): n 2, N 4, var f (six) .26667, cov_L(y, f) .5, lam .5 / (1.5 * .26667) = 1.25,
    kept at 1; rate .5 + (.75 - .5) = .75; se^2 = 0 + var_U(f) / 4 = .25 / 4. The other 2: the teachers' (1, 0):
    .5, se^2 = .5 / 2. Weighted 6/8 and 2/8: rate .6875, se^2 = (.75 * .25)^2 + (.25 * .5)^2 = .05078125."""
    partly_judged(engine, [1, 0])
    e = json.loads(cli("report", "--format", "json", "--estimate-with", "gpt").stdout)["sources"]["p"]["estimate"]
    assert e["method"] == "ppi++, stratified" and (e["teacher_n"], e["judge_n"]) == (4, 4)
    assert e["rate"] == pytest.approx(0.6875) and e["se"] == pytest.approx(math.sqrt(0.05078125))
    assert "the judge rated 6 of the source's 8 distractors" in e["note"]
    assert e["teachers_only"]["rate"] == 0.5  # every teacher label counts in the combined figure too
    table = cli("report", "--estimate-with", "gpt", "--format", "markdown").output
    assert "the other 2 are estimated from the teachers' 2 labels of them alone" in table
    plan = json.loads(cli("plan", "--target-width", "0.5", "--estimate-with", "gpt", "--format", "json").stdout)
    assert plan["sources"]["p"]["with_judge"]["need"] == plan["sources"]["p"]["teachers_only"]["need"]
    assert "the judge rated 6 of the source's 8 distractors" in plan["sources"]["p"]["with_judge"]["note"]
    shown = " ".join(cli("plan", "--target-width", "0.5", "--estimate-with", "gpt").output.split())
    assert "p: the judge rated 6 of the source's 8 distractors: the teachers' figure" in shown


def test_without_teacher_labels_of_the_part_the_judge_left_out_there_is_no_estimate(cli, engine):
    partly_judged(engine, [1])
    e = json.loads(cli("report", "--format", "json", "--estimate-with", "gpt").stdout)["sources"]["p"]["estimate"]
    assert e["rate"] is None and "teachers rated 1 of the other 2" in e["reason"]


def test_the_estimate_uses_the_teachers_of_the_acceptance_figures(cli, study, engine):
    """--rater anna: the acceptance per source is anna's, and so are the teachers of the estimate beside it."""
    with Session(engine) as session:
        label(session, "bo", "human", {1: (1, False), 2: (1, False), 3: (1, False), 4: (1, False)})
        session.commit()
    both = json.loads(cli("report", "--format", "json", "--estimate-with", "gpt").stdout)["sources"]["s"]
    alone = json.loads(cli("report", "--format", "json", "--estimate-with", "gpt", "--rater", "anna").stdout)
    assert both["estimate"]["teachers_only"]["rate"] == pytest.approx((0.75 + 0.0) / 2)  # each distractor's share
    assert alone["sources"]["s"]["estimate"]["teachers_only"]["rate"] == 0.75
    assert alone["sources"]["s"]["estimate"]["rate"] == pytest.approx(0.8125)  # as with anna alone, by hand above
    judge = json.loads(cli("report", "--format", "json", "--estimate-with", "gpt", "--rater", "gpt").stdout)
    assert "--rater gpt names no teacher" in judge["estimate_note"]  # the figures above are gpt's: said
    assert "estimate_note" not in alone


def test_a_score_that_only_repeats_the_label_is_not_said_to_be_used():
    y, f = [1.0, 0.0, 1.0, 1.0], [(1.0, 4.0), (0.0, 2.0), (1.0, 4.0), (0.0, 2.0)]
    estimate = ppi(y, f, [(1.0, 4.0), (0.0, 2.0)] * 3)
    assert estimate.predictors == "label" and estimate.lam_score is None


def items_study(engine) -> None:
    """Five items, A-E. Source c: two distractors in each; teachers rate A-C: A (1, 1), B (0, 0), C (1, 0); the
    judge all ten: A (1, 1), B (0, 1), C (1, 1), D (1, 0), E (0, 0). Source d: one more distractor in each of A-C,
    teachers (1, 0, 1), the judge the same."""
    with Session(engine) as session:
        ids = add_items(session, [[("c0", "c"), ("c1", "c"), ("d", "d")]] * 3 + [[("c0", "c"), ("c1", "c")]] * 2)
        item = {d: n + 1 for n, group in enumerate(ids) for d in group}
        teachers = [1, 1, 1, 0, 0, 0, 1, 0, 1]
        judge = [1, 1, 1, 0, 1, 0, 1, 1, 1, 1, 0, 0, 0]
        rated = [d for group in ids[:3] for d in group]
        label(session, "anna", "human", {d: (item[d], bool(v)) for d, v in zip(rated, teachers)})
        label(session, "gpt", "llm", {d: (item[d], bool(v)) for d, v in zip([d for g in ids for d in g], judge)})
        session.commit()


def test_distractors_of_one_item_go_together_in_the_interval_and_in_a_difference(cli, engine):
    """Item by item (CR1), by hand. Source c, teachers only: mean .5; each item's share of the error, the sum of
    (y - .5) / 6 over its distractors: A 1/6, B -1/6, C 0; se^2 = 3/2 (1/36 + 1/36) = .083333, against var(y) / 6 =
    .05 distractor by distractor (an item's distractors agree here). PPI: var f (ten) .266667, cov_L(f, y) .1, lam
    = .1 / ((1 + 6/4) .266667) = .15, rate .5 + .15 (1/4 - 5/6) = .4125; shares of the residuals y - lam f (mean
    .375): A .158333, B -.15, C -.008333; of the judge-only lam f (mean .0375, over 4): D .01875, E -.01875; se^2 =
    3/2 (.158333^2 + .15^2 + .008333^2) + 2 (2 * .01875^2) = .0728646 (.0470313 distractor by distractor).
    Source d, teachers only: 2/3, shares (1/3, -2/3, 1/3) / 3, se^2 = 3/2 * 6/81 = .111111. The difference c - d
    sums each item's shares first: se^2 = .0339757, where adding the two variances gives .1839757: the same items
    rated for both sources show the difference far more sharply. Degrees of freedom: items less one (c: 2 and 1,
    together 2.08; d: 2; the difference 3.88): t(3)."""
    items_study(engine)
    data = json.loads(cli("report", "--format", "json", "--estimate-with", "gpt").stdout)
    c = data["sources"]["c"]["estimate"]
    assert c["teachers_only"]["rate"] == 0.5 and c["teachers_only"]["se"] == pytest.approx(math.sqrt(1 / 12))
    assert c["lam"] == pytest.approx(0.15) and c["rate"] == pytest.approx(0.4125)
    assert c["se"] == pytest.approx(math.sqrt(0.07286458333)) and c["note"] is None
    d = data["sources"]["d"]["estimate"]
    assert d["rate"] == pytest.approx(2 / 3) and d["se"] == pytest.approx(math.sqrt(1 / 9))
    difference = data["estimate_differences"]["c - d"]
    assert difference["difference"] == pytest.approx(0.4125 - 2 / 3)
    se = math.sqrt(0.03397569444)
    df_c = welch((0.07145833, 2), (0.00140625, 1))
    assert c["df"] == pytest.approx(df_c) and 3 < welch((0.07286458, df_c), (1 / 9, 2)) < 4
    assert difference["ci95"] == pytest.approx([0.4125 - 2 / 3 - T[3] * se, 0.4125 - 2 / 3 + T[3] * se])
    assert difference["excludes_zero"] is False
    # rater plan: the teachers' labels of c spread .3 per distractor, and by item 5/3 as much (.083333 / .05), two
    # distractors to an item; for a width of .8 the fewest n with t(n / 2 - 1)^2 * 5/3 * .3 / n <= .4^2 (a
    # fractional df rounds down): 18 (9 items), where distractors one by one with the normal's 1.96 would say
    # ceil(.3 / (.4 / 1.96)^2) = 8
    for n, t, enough in ((17, 2.364624, False), (18, 2.306004, True)):
        assert (t * t * 5 / 3 * 0.3 / n <= 0.16) is enough
    plan = json.loads(cli("plan", "--target-width", "0.8", "--format", "json").stdout)
    assert plan["sources"]["c"]["teachers_only"]["need"] == 18


def test_a_source_rated_in_one_item_says_its_interval_may_be_too_narrow(cli, study):
    data = json.loads(cli("report", "--format", "json", "--estimate-with", "gpt").stdout)
    assert "come from one item" in data["sources"]["s"]["estimate"]["note"]
    assert "come from one item" in data["sources"]["s"]["estimate"]["teachers_only"]["note"]


def test_with_easy_and_hard_questions_the_interval_by_item_holds_the_truth_where_one_by_one_does_not():
    """Teachers rate whole items, and an item gives its four distractors a shared part of their quality (sd .7 of
    1): 400 repetitions of 12 rated items, seeded. Summed item by item (with t on 11 degrees of freedom) the
    teachers' interval holds the true 42.5 % about 95 % of the time; distractor by distractor about 83 %
    (benchmarks/bench_estimate.py measures the combined estimate the same way)."""
    import random

    from rater.evaluation.estimate import Keys

    rng, truth_rate = random.Random(3), 0.5 * math.erfc(0.19 / math.sqrt(2))
    by_item = one_by_one = 0
    for _ in range(400):
        y = []
        for _ in range(12):
            shared = rng.gauss(0, 0.7)
            y += [float(shared + math.sqrt(1 - 0.49) * rng.gauss(0, 1) > 0.19) for _ in range(4)]
        grouped, alone = teachers_only(y, Keys([d // 4 for d in range(48)], list(range(48)))), teachers_only(y)
        assert grouped.df == 11 and alone.df == 47
        by_item += grouped.ci95[0] <= truth_rate <= grouped.ci95[1]
        one_by_one += alone.ci95[0] <= truth_rate <= alone.ci95[1]
    assert 0.92 <= by_item / 400 <= 0.98 and one_by_one / 400 < 0.88


def test_teacher_labels_all_alike_give_an_interval_not_a_point(cli, engine):
    """Source z: five items of two distractors, every one rejected by anna, some accepted by the judge. Ten labels
    alike show no spread, which is not a spread of zero: Agresti-Coull, (0 + 2) / (10 + 4) = .142857, se^2 =
    .142857 * .857143 / 14 = .0087464, t on 5 items less one (2.776445): [0, .402516]. The difference with a source
    of the same items is then not falsely sure, and plan does not say 0 more."""
    with Session(engine) as session:
        ids = add_items(session, [[("z0", "z"), ("z1", "z"), ("y", "y")]] * 5)
        item = {d: n + 1 for n, group in enumerate(ids) for d in group}
        label(session, "anna", "human", {d: (item[d], d % 3 == 0 and g[2] == d) for g in ids for d in g})
        label(session, "gpt", "llm", {d: (item[d], d % 2 == 0) for g in ids for d in g})
        session.commit()
    data = json.loads(cli("report", "--format", "json", "--estimate-with", "gpt").stdout)
    z = data["sources"]["z"]["estimate"]
    se = math.sqrt(2 / 14 * 12 / 14 / 14)
    assert z["rate"] == 0.0 and z["se"] == pytest.approx(se) and z["df"] == 4
    assert z["ci95"] == pytest.approx([0.0, 2 / 14 + T4 * se])
    assert z["teachers_only"]["ci95"] == z["ci95"] and "all reject" in z["note"]
    assert data["estimate_differences"]["y - z"]["ci95"][1] - data["estimate_differences"]["y - z"]["ci95"][0] > 0.3
    csv_rows = [r for r in cli("report", "--format", "csv", "--estimate-with", "gpt").stdout.splitlines()
                if r.startswith("estimate,gpt,z,")]
    assert len(csv_rows) == 2 and all("all reject" in r for r in csv_rows)  # the CSV carries the note too
    plan = json.loads(cli("plan", "--target-width", "0.2", "--estimate-with", "gpt", "--format", "json").stdout)
    assert plan["sources"]["z"]["teachers_only"]["more"] > 0 and plan["sources"]["z"]["with_judge"]["more"] > 0


T4 = 2.776445
