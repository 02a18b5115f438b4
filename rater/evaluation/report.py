"""The evaluation report: acceptance per source and rater, filtered and length views, judge versus teachers,
agreement between raters. Pure computation over rating rows; `report_data` builds the JSON contract."""

from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import combinations
from typing import Iterable, Sequence

from sqlalchemy import select
from sqlmodel import Session, col

from rater.core.domain import HUMAN_SOURCE, RaterKind
from rater.evaluation.agreement import UNDEFINED, cohen_kappa, krippendorff_alpha, precision_recall, wilson
from rater.store.ratings import eval_set_id_of
from rater.store.tables import Distractor, RaterRecord, Rating, rating_scope

SHORT_WORDS = 2  # "short" distractors have at most this many words


@dataclass(frozen=True)
class RatingRow:
    distractor_id: int
    item_id: int
    source: str
    text: str
    rater: str
    kind: str
    accepted: bool
    reason: str | None
    score: float | None = None  # a judge's 1-5 score (a panel's share or mean), None for teachers and rules


def load_rows(session: Session, *, eval_set: str | None = None, sources: Sequence[str] = (),
              raters: Sequence[str] = ()) -> list[RatingRow]:
    """The ratings of one scope: an evaluation set's own judgements with `eval_set`, else preference rating."""
    query = (select(col(Rating.distractor_id), col(Rating.item_id), col(Distractor.source), col(Distractor.text), col(RaterRecord.name), col(RaterRecord.kind),
                    col(Rating.accepted), col(Rating.reason), col(Rating.score))
             .join(Distractor, col(Distractor.id) == col(Rating.distractor_id)).join(RaterRecord, col(RaterRecord.id) == col(Rating.rater_id))
             .where(rating_scope(eval_set_id_of(session, eval_set))))
    if sources:
        query = query.where(col(Distractor.source).in_(sources))
    if raters:
        query = query.where(col(RaterRecord.name).in_(raters))
    return [RatingRow(*row) for row in session.execute(query.order_by(col(Rating.distractor_id), col(RaterRecord.name)))]


def rate_entry(accepted: int, total: int) -> dict:
    lo, hi = wilson(accepted, total)
    return {"accepted": accepted, "total": total, "rate": accepted / total if total else None, "ci95": [lo, hi]}


def by_source(rows: Iterable[RatingRow]) -> dict[str, dict]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        counts[row.source][0] += row.accepted
        counts[row.source][1] += 1
    return {source: rate_entry(a, t) for source, (a, t) in sorted(counts.items())}


def human_names(rows: Sequence[RatingRow]) -> list[str]:
    return sorted({r.rater for r in rows if r.kind == RaterKind.human})


def filtered_rows(rows: Sequence[RatingRow], humans: Sequence[str], human_source: str = HUMAN_SOURCE) -> list[RatingRow]:
    """Rows of items that have human distractors, every one of them accepted by every human rater."""
    human = [r for r in rows if r.rater in humans]
    has_human, rejected = set(), set()
    for r in human:
        if r.source == human_source:
            has_human.add(r.item_id)
            if not r.accepted:
                rejected.add(r.item_id)
    # a human distractor some human rater did not rate at all also disqualifies the item
    rated = defaultdict(set)
    for r in human:
        if r.source == human_source:
            rated[r.distractor_id].add(r.rater)
    incomplete = {r.item_id for r in human if r.source == human_source and rated[r.distractor_id] != set(humans)}
    keep = has_human - rejected - incomplete
    return [r for r in human if r.item_id in keep]


def word_count(text: str) -> int:
    return len(text.split())


def labels_by_distractor(rows: Iterable[RatingRow]) -> dict[int, dict[str, bool]]:
    table: dict[int, dict[str, bool]] = defaultdict(dict)
    for r in rows:
        table[r.distractor_id][r.rater] = r.accepted
    return table


def agreement(rows: Sequence[RatingRow], overlap: int | None = None) -> dict:
    """Each pair of raters' agreement on shared distractors, alpha over all, and a note on what is missing (with
    `overlap`, the study's K, when the study itself keeps teachers apart)."""
    table = labels_by_distractor(rows)
    names = sorted({r.rater for r in rows})
    pairs = []
    for a, b in combinations(names, 2):
        shared = [(v[a], v[b]) for v in table.values() if a in v and b in v]
        if not shared:
            continue
        xs, ys = zip(*shared)
        pairs.append({"a": a, "b": b, "n": len(shared), "percent": sum(x == y for x, y in shared) / len(shared),
                      "kappa": cohen_kappa(xs, ys)})
    alpha = krippendorff_alpha([list(v.values()) for v in table.values()])
    undefined = alpha is None or any(p["kappa"] is None for p in pairs)
    note = agreement_note(pairs, undefined, len(names))
    humans = set(human_names(rows))
    if overlap == 1 and not any(p["a"] in humans and p["b"] in humans for p in pairs):
        note = ("agreement between teachers needs two teachers on the same items; this study has overlap 1 "
                "(`rater study overlap 2` sends each item to two)")
    return {"pairs": pairs, "alpha": alpha, "note": note}


def agreement_note(pairs: list[dict], undefined: bool, raters: int) -> str | None:
    """Why agreement figures are missing or undefined, in words (None when nothing needs saying)."""
    if raters < 2:
        return "agreement needs two raters on the same distractors; this scope has one rater"
    if not pairs:
        return "agreement needs two raters on the same distractors; no two raters share any here"
    if undefined:
        return "kappa and alpha are " + UNDEFINED
    return None


def human_majority(labels: dict[str, bool], humans: Sequence[str]) -> bool | None:
    votes = [labels[h] for h in humans if h in labels]
    yes = sum(votes)
    return None if not votes or 2 * yes == len(votes) else 2 * yes > len(votes)


def judges_vs_humans(rows: Sequence[RatingRow]) -> dict:
    table = labels_by_distractor(rows)
    humans = human_names(rows)
    machine = sorted({r.rater for r in rows if r.kind in (RaterKind.llm, RaterKind.rule, RaterKind.panel)})
    result = {}
    for judge in machine:
        versus = {}
        for human in humans + (["majority"] if len(humans) > 1 else []):
            pairs: list[tuple[bool, bool]] = []
            for labels in table.values():
                truth = human_majority(labels, humans) if human == "majority" else labels.get(human)
                if judge in labels and truth is not None:
                    pairs.append((labels[judge], truth))
            if pairs:
                predicted = [p for p, _ in pairs]
                truths = [t for _, t in pairs]
                precision, recall = precision_recall(predicted, truths)
                versus[human] = {"n": len(pairs), "precision": precision, "recall": recall,
                                 "kappa": cohen_kappa(predicted, truths), "judge_rate": sum(predicted) / len(pairs),
                                 "human_rate": sum(truths) / len(pairs)}
        result[judge] = {"vs": versus}
    return result


def report_data(rows: Sequence[RatingRow], raters: Sequence[str] = (), overlap: int | None = None) -> dict:
    """The documented JSON contract (README): sources, raters, filtered, by_length, agreement, judges, reasons and
    each rater's kind. `overlap`: the study's K, for the agreement's note."""
    humans = human_names(rows)
    # Without --rater, acceptance per source is the teachers' view when there are teachers.
    headline = [r for r in rows if r.rater in humans] if humans and not raters else list(rows)
    return {
        "sources": by_source(headline),
        "raters": {name: by_source(r for r in rows if r.rater == name) for name in sorted({r.rater for r in rows})},
        "filtered": by_source(filtered_rows(rows, humans)) if humans else {},
        "by_length": {"short": by_source(r for r in headline if word_count(r.text) <= SHORT_WORDS),
                      "long": by_source(r for r in headline if word_count(r.text) > SHORT_WORDS)},
        "agreement": agreement(rows, overlap),
        "judges": judges_vs_humans(rows),
        "reasons": dict(Counter(r.reason for r in rows if r.reason and not r.accepted).most_common()),
        "kinds": {name: kind for name, kind in sorted({(r.rater, r.kind) for r in rows})},
    }
