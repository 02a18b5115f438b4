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
    assert e["method"] == "ppi++" and (e["teacher_n"], e["judge_n"]) == (4, 6)
    assert e["lam"] == pytest.approx(0.375) and e["rate"] == pytest.approx(0.8125)
    assert e["se"] == pytest.approx(math.sqrt(0.04921875))
    assert e["ci95"] == pytest.approx([0.8125 - Z * math.sqrt(0.04921875), 1.0])  # clipped at 1
    only = e["teachers_only"]
    assert only["rate"] == 0.75 and only["se"] == pytest.approx(math.sqrt(0.25 / 4))
    assert data["sources"]["t"]["estimate"]["judge_n"] == 0  # the judge adds nothing unlabelled: the teachers' mean
    assert data["sources"]["t"]["estimate"]["rate"] == 0.25 and data["sources"]["t"]["estimate"]["lam"] == 0.0
    assert "u" not in data["sources"]  # no teacher label: the report's sources are the teachers'
    difference = data["estimate_differences"]["s - t"]
    se = math.sqrt(0.04921875 + data["sources"]["t"]["estimate"]["se"] ** 2)
    assert difference["difference"] == pytest.approx(0.8125 - 0.25)
    assert difference["ci95"] == pytest.approx([0.5625 - Z * se, 0.5625 + Z * se])
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
    # teachers only: var(y) .25, target se .4 / (2 z): need ceil(.25 / se^2) = 25, have 4
    target = (0.4 / (2 * Z)) ** 2
    assert s["teachers_only"] == {"have": 4, "need": math.ceil(0.25 / target), "more": math.ceil(0.25 / target) - 4,
                                  "reachable": False, "pool": 10}  # 25 needed, the source has 10
    # with the judge: residual variance .171875 over n, plus the judge-only part lam^2 var_U(f) / N = .00625: 42,
    # more than the teachers alone need, and the estimate can always do without the judge (lam 0): 25
    combined = math.ceil(0.171875 / (target - 0.140625 * (4 / 15) / 6))
    assert combined > s["teachers_only"]["need"] and s["with_judge"]["need"] == s["teachers_only"]["need"]
    narrow = json.loads(cli("plan", "--target-width", "0.2", "--estimate-with", "gpt", "--format", "json").stdout)
    assert narrow["sources"]["s"]["teachers_only"]["reachable"] is False  # 97 needed, the source has 10
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
