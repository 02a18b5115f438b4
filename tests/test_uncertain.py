"""`--order uncertain`: the items the judges are least sure about come first (scores near the acceptance limit,
judges or rules that disagree, a judge that decided differently in another order); items no judge rated after,
and the screen says so. Through the real screen (pilot), alone and with the study's overlap."""

import io
import json

import pytest
from rich.console import Console
from sqlalchemy import select
from sqlmodel import Session

from rater.cli.rate import order_by_uncertainty
from rater.core.domain import Judgement
from rater.evaluation.uncertainty import item_uncertainty
from rater.raters.runner import Queue
from rater.store.ratings import get_or_create_rater, save_judgements
from rater.store.study import uncertain_order_used
from rater.store.tables import Distractor, Item, JudgeRequest, utcnow
from tests.conftest import build_app, press, settle

SIZE = (100, 30)


def judged_study(engine) -> list[int]:
    """The demo's first five items judged so that their uncertainty is known; returns the item ids in the order
    --order uncertain must give them: the 5th (one order accepted what another rejected, all four distractors,
    though its scores sit 2 above the limit), the 4th (a rule disagrees with the judge on one distractor), the 3rd
    (scores 0.2 above the limit), the 2nd (0.5 above), then the 1st (2 above)."""
    with Session(engine) as session, session.begin():
        items = sorted(session.execute(select(Item.id)).scalars())[:5]
        distractors = {i: session.execute(select(Distractor.id).where(Distractor.item_id == i)
                                          .order_by(Distractor.id)).scalars().all() for i in items}
        gpt = get_or_create_rater(session, name="gpt", kind="llm", settings={"acceptance": {"rule": "threshold",
                                                                                             "threshold": 3.0}})
        rules = get_or_create_rater(session, name="rules", kind="rule")
        away = {items[0]: 2.0, items[1]: 0.5, items[2]: 0.2, items[3]: 2.0, items[4]: 2.0}
        for item_id, distance in away.items():
            save_judgements(session, rater_id=gpt.id, item_id=item_id, judgements=[
                Judgement(d, True, score=3.0 + distance, limit=3.0) for d in distractors[item_id]])
        save_judgements(session, rater_id=rules.id, item_id=items[3],
                        judgements=[Judgement(distractors[items[3]][0], False)])
        first, *rest = distractors[items[4]]
        for order, scores in (([first, *rest], [5.0] + [1.0] * len(rest)), ([*rest, first], [5.0] * len(rest) + [1.0])):
            session.add(JudgeRequest(key=f"k{len(order)}{scores[0]}", rater_id=gpt.id, item_id=items[4], model="m",
                                     status="ok", scores=json.dumps(scores), order=json.dumps(order),
                                     created_at=utcnow()))
    return [items[4], items[3], items[2], items[1], items[0]]


def test_uncertainty_is_measured_from_limits_disagreement_and_orders(cli, engine):
    cli("demo")
    expected = judged_study(engine)
    with Session(engine) as session:
        scores = item_uncertainty(session)
    # acceptance begins half a step above the limit (3.25): 0.05 away 0.975, 0.25 away 0.875, 1.75 away 0.125; an
    # item counts its unsettled distractors and adds the nearest other's closeness: four moved, 4; one the rule
    # disputes, 1 + .125
    assert [scores[i] for i in expected] == pytest.approx([4.0, 1.125, 0.975, 0.875, 0.125])
    assert len(scores) == 5  # the other items: no judge rated them


async def rated_in_order(engine, queue: Queue, count: int, name: str = "anna") -> tuple[list[int], list[str]]:
    """The items a teacher is shown, one after the other, and the status line on each."""
    app = build_app(engine, rater_name=name, queue=queue)
    seen, statuses = [], []
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for _ in range(count):
            seen.append(app.shown.item.id)
            statuses.append(str(app.query_one("#status").render()))
            await press(pilot, "1", "space")
    return seen, statuses


async def test_the_screen_shows_the_most_uncertain_items_first_and_says_so(cli, engine):
    cli("demo")
    expected = judged_study(engine)
    assert order_by_uncertainty(engine, Console(file=io.StringIO()))
    with Session(engine) as session:
        assert not uncertain_order_used(session)  # scoring the items is not yet showing any to a teacher
    seen, statuses = await rated_in_order(engine, Queue(uncertain=True), 6)
    assert seen[:5] == expected and seen[5] not in expected
    assert all("ordered by the judges' uncertainty" in s for s in statuses[:5])
    assert "no judge has rated this item" in statuses[5]
    note = json.loads(cli("report", "--format", "json", "--estimate-with", "gpt").stdout)["estimate_note"]
    assert note.startswith("teachers have been shown items in the judges' uncertainty order")  # not random: said
    planned = json.loads(cli("plan", "--target-width", "0.2", "--estimate-with", "gpt", "--format", "json").stdout)
    assert planned["note"] == note  # and so does the plan, which takes the labels' spread as a random sample's
    assert "Warning: teachers have been shown items in the judges' uncertainty order" in " ".join(
        cli("plan", "--target-width", "0.2").output.split())


async def test_with_an_overlap_the_claims_follow_the_same_order(cli, engine):
    cli("demo")
    expected = judged_study(engine)
    cli("study", "overlap", "1")
    order_by_uncertainty(engine, Console(file=io.StringIO()))
    seen, _ = await rated_in_order(engine, Queue(uncertain=True), 6)
    assert seen[:5] == expected and seen[5] not in expected
    bo, _ = await rated_in_order(engine, Queue(uncertain=True), 1, name="bo")
    assert bo[0] not in seen  # overlap 1: the next teacher gets an item anna has not rated


async def test_without_judge_ratings_the_order_is_the_stored_one_with_a_warning_on_the_screen(cli, engine):
    cli("demo")
    out = io.StringIO()
    assert order_by_uncertainty(engine, Console(file=out, width=200)) is False
    assert "no judge has rated anything: the items come in the stored order" in out.getvalue()
    app = build_app(engine, rater_name="anna", notices=("uncertain_none",))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert "so the items come in the stored order, not by uncertainty" in " ".join(n.message for n in app._notifications)


def unsettled_study(engine) -> list[int]:
    """Teachers have rated four items the judge scored: they accept its 5s, reject its 1s and 2s, and accept its 4
    in two items of the four, so calibrations fitted to resamples of their labels (drawn item by item) disagree about
    a 4 (accept from above 3.5, or only from above 4). Two more items are judged only: the 5th with a 4, far from
    the judge's own limit (3: closeness .625), the 6th with a 3.5 right at the limit (.875) that every such
    calibration rejects. Returns the six item ids."""
    with Session(engine) as session, session.begin():
        items = sorted(session.execute(select(Item.id)).scalars())[:6]
        distractors = {i: session.execute(select(Distractor.id).where(Distractor.item_id == i)
                                          .order_by(Distractor.id)).scalars().all()[:4] for i in items}
        gpt = get_or_create_rater(session, name="gpt", kind="llm",
                                  settings={"acceptance": {"rule": "threshold", "threshold": 3.0}})
        anna = get_or_create_rater(session, name="anna", kind="human")
        scores = [[5.0, 4.0, 2.0, 1.0], [5.0, 4.0, 2.0, 1.0], [5.0, 4.0, 1.0, 1.0], [5.0, 4.0, 2.0, 1.0],
                  [4.0, 1.0, 1.0, 1.0], [3.5, 1.0, 1.0, 1.0]]
        teachers = [[True, True, False, False], [True, True, False, False], [True, False, False, False],
                    [True, False, False, False]]
        for item_id, item_scores in zip(items, scores):
            save_judgements(session, rater_id=gpt.id, item_id=item_id, judgements=[
                Judgement(d, s > 3.0, score=s, limit=3.0) for d, s in zip(distractors[item_id], item_scores)])
        for item_id, labels in zip(items, teachers):
            save_judgements(session, rater_id=anna.id, item_id=item_id,
                            judgements=[Judgement(d, a) for d, a in zip(distractors[item_id], labels)])
    return items


def check_unsettled_first(engine) -> None:
    """The 5th item (its 4 unsettled) comes before the 6th (near the judge's limit), and the command says why."""
    items = unsettled_study(engine)
    with Session(engine) as session:
        found = item_uncertainty(session)
    assert found[items[4]] == 1.0 and found[items[5]] == pytest.approx(0.875)
    console = Console(file=io.StringIO(), width=200)
    assert order_by_uncertainty(engine, console)
    assert ("6 items scored (gpt: also where calibrations fitted to resamples of the teachers' labels so far "
            "disagree, and near the limit they fit)") in console.file.getvalue()


def test_distractors_the_teachers_labels_do_not_yet_settle_come_first(cli, engine):
    cli("demo")
    check_unsettled_first(engine)  # (on PostgreSQL too: tests/test_postgres.py)


def test_where_the_calibrations_agree_closeness_is_to_the_limit_they_fit_not_the_judges_own():
    """A judge limit of 3, and a committee that agrees on accepting above 4 (not yet saved): a 4.5 is half a step
    from where acceptance begins for them (.875), not far above the judge's own limit (.375)."""
    from rater.evaluation.uncertainty import distractor_uncertainty
    from rater.judge.scoring import Acceptance

    agreed = [Acceptance(rule="threshold", threshold=4.0)] * 6
    assert distractor_uncertainty(4.5, 3.0, [4.5, 1.0], agreed) == pytest.approx(0.875)
    assert distractor_uncertainty(4.5, 3.0, [4.5, 1.0]) == pytest.approx(0.375)
    split = agreed[:3] + [Acceptance(rule="threshold", threshold=4.5)] * 3
    assert distractor_uncertainty(4.5, 3.0, [4.5, 1.0], split) == 1.0
