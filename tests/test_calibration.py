"""Calibration recovers a known threshold from synthetic judge scores and raises agreement with the teacher."""

import random

import pytest
import yaml
from sqlalchemy import select
from sqlmodel import Session

from rater.core.domain import Judgement
from rater.evaluation.calibration import calibrate, load_cases
from rater.judge.config import find_judge
from rater.judge.scoring import Acceptance
from rater.store.ratings import get_or_create_rater, save_judgements
from rater.store.tables import RaterRecord, Rating, RatingHistory
from tests.test_report import add_items


@pytest.fixture
def synthetic(engine):
    """200 items x 4 distractors. The teacher accepts when the judge's score is above 3 (10 % of labels flipped);
    the judge's own stored decisions use the lenient weighted limit of SPEC section 5."""
    rng = random.Random(7)
    with Session(engine) as session:
        ids = add_items(session, [[(f"d{n}-{i}", "sft") for i in range(4)] for n in range(200)])
        judge = get_or_create_rater(session, name="gpt", kind="llm")
        teacher = get_or_create_rater(session, name="anna", kind="human")
        rule = Acceptance()
        for item_id, distractors in enumerate(ids, 1):
            scores = [rng.choice([1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5]) for _ in distractors]
            limit = rule.limit(scores)
            save_judgements(session, rater_id=judge.id, item_id=item_id, judgements=[
                Judgement(d, s > limit, score=s, limit=limit) for d, s in zip(distractors, scores)])
            save_judgements(session, rater_id=teacher.id, item_id=item_id, judgements=[
                Judgement(d, (s > 3) != (rng.random() < 0.1)) for d, s in zip(distractors, scores)])
        session.commit()


def test_recovers_the_threshold_and_raises_kappa(engine, synthetic):
    with Session(engine) as session:
        result = calibrate(load_cases(session, judge="gpt", against=["anna"]))
    assert result.rule.rule == "threshold" and 3.0 <= result.rule.threshold < 3.5
    assert result.after.kappa > result.before.kappa + 0.1
    assert abs(result.after.gap) < abs(result.before.gap)


def test_cli_prints_before_and_after_and_saves(cli, engine, synthetic, tmp_path, monkeypatch):
    monkeypatch.setenv("RATER_HOME", str(tmp_path))
    judges = tmp_path / "judges.yaml"
    hand_written = ("# my judges, in my order\njudges:\n  gpt:    # the calibrated one\n    model: judge-model\n"
                    "    price_in: 10   # USD\n    acceptance: {rule: weighted}\n")
    judges.write_text(hand_written)
    output = " ".join(cli("calibrate", "--judge", "gpt", "--against", "anna", "--save").output.split())
    assert "before: kappa" in output and "after (cross-validated): kappa" in output and "'rule': 'threshold'" in output
    assert judges.read_text() == hand_written  # the user's file is kept byte for byte
    saved = find_judge("gpt", "judge-model", judges)
    assert saved.acceptance.rule == "threshold" and 3.0 <= saved.acceptance.threshold < 3.5
    assert saved.price_in == 10 and "calibrations.yaml" in saved.acceptance_from and "anna" in saved.acceptance_from
    stored = yaml.safe_load((tmp_path / "calibrations.yaml").read_text())["calibrations"]["gpt"]
    assert stored["acceptance"]["rule"] == "threshold" and stored["against"] == ["anna"]
    with Session(engine) as session:
        rows = session.execute(select(Rating.score, Rating.accepted, Rating.limit).join(RaterRecord)
                               .where(RaterRecord.name == "gpt")).all()
        threshold = saved.acceptance.threshold
        assert all(accepted == (score > threshold) and limit == threshold for score, accepted, limit in rows)
        history = session.execute(select(RatingHistory.rating_id)).scalars().all()
        revised = session.execute(select(Rating.id).join(RaterRecord).where(RaterRecord.name == "gpt", Rating.revision == 2)
                                  ).scalars().all()
    assert history and sorted(history) == sorted(revised)  # history and a new revision only where the label changed
    assert f"{len(revised)} stored ratings of gpt changed" in output


def test_refuses_with_too_few_shared_ratings(cli, engine):
    with Session(engine) as session:
        ids = add_items(session, [[("a", "sft"), ("b", "sft")]])
        for name, kind in (("gpt", "llm"), ("anna", "human")):
            rater = get_or_create_rater(session, name=name, kind=kind)
            save_judgements(session, rater_id=rater.id, item_id=1,
                            judgements=[Judgement(ids[0][0], True, score=4), Judgement(ids[0][1], False, score=2)])
        session.commit()
    result = cli("calibrate", "--judge", "gpt", "--against", "anna", ok=False)
    assert result.exit_code == 2 and "Only 2 distractors" in result.stderr
