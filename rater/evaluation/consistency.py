"""How far a judge agrees with itself, and what it costs, from its recorded requests (table judge_request):

- `orders`: the share of distractors whose accept/reject decision is the same in every order the judge was asked
  (None when each item was asked in one order only);
- `repeats`: the same for a request asked again unchanged (`rater judge --repeats N`; None without repeats);
- `by_position`: the acceptance rate by the place (1, 2, ...) an option was shown in, so position bias shows;
- cost: tokens per 1,000 distractors rated and, with prices in the judges file, the estimated cost.

A decision applies the judge's acceptance rule (recorded with its rater) to one answer's scores."""

import json
from collections import defaultdict

from sqlalchemy import func, select
from sqlmodel import Session, col

from rater.judge.scoring import Acceptance
from rater.store.tables import JudgeRequest, RaterRecord, Rating


def _acceptance(settings: str) -> Acceptance:
    rule = json.loads(settings or "{}").get("acceptance") or {}
    return Acceptance(**rule)


def decisions(scores: list[float], acceptance: Acceptance) -> list[bool]:
    limit = acceptance.limit(scores)
    return [s > limit for s in scores]


def _answers(session: Session, rater_id: int) -> tuple[dict[int, dict[str, list[dict[int, bool]]]], dict[int, list[bool]]]:
    """The judge's usable answers as decisions: item -> order sent -> one {distractor: accepted} per answer (repeats
    in the order asked); and the decisions by the place (1, 2, ...) the option was shown in."""
    settings = session.execute(select(col(RaterRecord.settings)).where(col(RaterRecord.id) == rater_id)).scalar() or "{}"
    acceptance = _acceptance(settings)
    answers: dict[int, dict[str, list[dict[int, bool]]]] = defaultdict(lambda: defaultdict(list))
    by_position: dict[int, list[bool]] = defaultdict(list)
    for item_id, order, scores in session.execute(
            select(col(JudgeRequest.item_id), col(JudgeRequest.order), col(JudgeRequest.scores))
            .where(col(JudgeRequest.rater_id) == rater_id, col(JudgeRequest.status).in_(("ok", "cached")))
            .order_by(col(JudgeRequest.id))):
        if not order or not scores:
            continue
        ids, values = json.loads(order), json.loads(scores)
        if len(ids) != len(values):
            continue
        decided = decisions(values, acceptance)
        answers[item_id][order].append(dict(zip(ids, decided)))
        for position, accepted in enumerate(decided, 1):
            by_position[position].append(accepted)
    return answers, by_position


def order_disagreements(session: Session, rater_id: int) -> set[int]:
    """Distractors this judge decided differently in different orders."""
    answers, _ = _answers(session, rater_id)
    found = set()
    for orders in answers.values():
        firsts = [runs[0] for runs in orders.values()]
        for distractor in firsts[0] if len(firsts) > 1 else ():
            if len({run.get(distractor) for run in firsts}) > 1:
                found.add(distractor)
    return found


def judge_consistency(session: Session, rater_id: int) -> dict:
    answers, by_position = _answers(session, rater_id)
    same_orders, asked_orders, same_repeats, asked_repeats = 0, 0, 0, 0
    for orders in answers.values():
        if len(orders) > 1:
            firsts = [runs[0] for runs in orders.values()]
            for distractor in firsts[0]:
                verdicts = {run.get(distractor) for run in firsts}
                asked_orders += 1
                same_orders += len(verdicts) == 1
        for runs in orders.values():
            if len(runs) > 1:
                for distractor in runs[0]:
                    asked_repeats += 1
                    same_repeats += len({run.get(distractor) for run in runs}) == 1
    return {"orders": same_orders / asked_orders if asked_orders else None, "orders_n": asked_orders,
            "repeats": same_repeats / asked_repeats if asked_repeats else None, "repeats_n": asked_repeats,
            "by_position": {str(p): {"accepted_rate": sum(v) / len(v), "n": len(v)}
                            for p, v in sorted(by_position.items())}}


def judge_cost(session: Session, rater_id: int, price_in: float = 0.0, price_out: float = 0.0) -> dict:
    """Tokens and estimated cost (USD, prices per million tokens) per 1,000 distractors this judge rated."""
    prompt, completion, requests = session.execute(
        select(func.coalesce(func.sum(col(JudgeRequest.prompt_tokens)), 0),
               func.coalesce(func.sum(col(JudgeRequest.completion_tokens)), 0), func.count())
        .where(col(JudgeRequest.rater_id) == rater_id)).one()
    rated = session.execute(select(func.count()).select_from(Rating).where(col(Rating.rater_id) == rater_id)).scalar_one()
    if not rated or not requests:
        return {"requests": int(requests), "distractors": int(rated), "tokens_per_1000": None, "cost_per_1000": None}
    tokens = (int(prompt) + int(completion)) * 1000 / rated
    priced = price_in > 0 or price_out > 0
    cost = (int(prompt) * price_in + int(completion) * price_out) / 1_000_000 * 1000 / rated if priced else None
    return {"requests": int(requests), "distractors": int(rated), "tokens_per_1000": tokens, "cost_per_1000": cost}
