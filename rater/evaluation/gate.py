"""The agreement gate: before a judge's (or a rule's, or a panel's) labels become training data, it must agree with
the teachers. Each non-teacher rater whose labels are used needs Cohen's kappa of at least `min_kappa` against the
teachers' majority on at least `min_shared` distractors they both rated (preference rating, ties among the teachers
left out); otherwise the command stops and names the rater, its kappa and n."""

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import select
from sqlmodel import Session, col

from rater.core.domain import RaterKind
from rater.core.errors import InputError
from rater.evaluation.agreement import cohen_kappa
from rater.evaluation.panels import refresh_panels
from rater.store.tables import RaterRecord, Rating, rating_scope

MIN_SHARED = 30
MIN_KAPPA_HELP = ("Use a judge's, rule's or panel's labels only if its Cohen's kappa against the teachers' majority "
                  "reaches this (-1..1); else stop with exit 2.")
MIN_SHARED_HELP = ("With --min-kappa: the fewest distractors rated by both the rater and the teachers "
                   f"(default {MIN_SHARED}).")


@dataclass(frozen=True)
class GateResult:
    rater: str
    kappa: float | None
    n: int

    def describe(self) -> str:
        kappa = "undefined" if self.kappa is None else f"{self.kappa:.3f}"
        return f"{self.rater}: kappa {kappa} against the teachers' majority on {self.n} shared distractors"


def check_gate_options(min_kappa: float | None, min_shared: int | None) -> None:
    if min_shared is not None and min_kappa is None:
        raise InputError("--min-shared sets how many distractors the agreement gate needs; without --min-kappa "
                         "there is no gate.", "add --min-kappa K (e.g. 0.41), or leave out --min-shared")
    if min_kappa is not None and (math.isnan(min_kappa) or not -1 <= min_kappa <= 1):
        raise InputError(f"--min-kappa {min_kappa:g} is outside -1..1, the range of Cohen's kappa.",
                         "e.g. --min-kappa 0.41 (moderate agreement)")
    if min_shared is not None and min_shared < 1:
        raise InputError(f"--min-shared {min_shared} is below 1.", f"the default is {MIN_SHARED}")


def agreement_with_teachers(session: Session, rater_ids: Sequence[int]) -> list[GateResult]:
    """Each non-teacher rater among `rater_ids` against the teachers' majority on shared distractors. A study
    without any teacher's rating cannot be checked: an error that says so."""
    kinds = dict(session.execute(select(col(RaterRecord.id), col(RaterRecord.kind))).all())
    names = dict(session.execute(select(col(RaterRecord.id), col(RaterRecord.name))).all())
    checked = [r for r in rater_ids if kinds.get(r) != RaterKind.human]
    teachers = [r for r, kind in kinds.items() if kind == RaterKind.human]
    if not checked:
        return []
    votes: dict[int, list[bool]] = defaultdict(list)
    labels: dict[int, dict[int, bool]] = defaultdict(dict)
    for distractor_id, rater_id, accepted in session.execute(
            select(col(Rating.distractor_id), col(Rating.rater_id), col(Rating.accepted))
            .where(rating_scope(None), col(Rating.rater_id).in_(teachers + checked))):
        if rater_id in checked:
            labels[rater_id][distractor_id] = bool(accepted)
        else:
            votes[distractor_id].append(bool(accepted))
    if not votes:
        raise InputError("The agreement gate cannot be checked: no teacher has rated anything in preference rating.",
                         "have teachers rate a sample (`rater rate`), or leave out --min-kappa")
    majority = {d: 2 * sum(v) > len(v) for d, v in votes.items() if 2 * sum(v) != len(v)}
    results = []
    for rater_id in checked:
        shared = [(label, majority[d]) for d, label in labels[rater_id].items() if d in majority]
        kappa = cohen_kappa([a for a, _ in shared], [b for _, b in shared]) if shared else None
        results.append(GateResult(names[rater_id], kappa, len(shared)))
    return results


def labels_to_use(session: Session, rater_ids: Sequence[int], min_kappa: float | None,
                  min_shared: int | None = None) -> list[str]:
    """Before the ratings of `rater_ids` become training data: panels brought up to date, and the agreement gate
    (--min-kappa). The lines to show: whose majority decides (when teachers and machines are mixed) and each rater
    that passed the gate."""
    refresh_panels(session)
    lines = []
    kinds = Counter(session.execute(select(col(RaterRecord.kind)).where(col(RaterRecord.id).in_(list(rater_ids))))
                    .scalars())
    if len(kinds) > 1:
        lines.append("Labels decided by the majority of " + ", ".join(
            f"{n} {kind if kind != RaterKind.human else 'teacher'}{'s' if n != 1 else ''}"
            for kind, n in sorted(kinds.items()))
            + " (a panel is one vote beside its members; --rater NAME chooses whose labels count).")
    lines += [f"agreement gate passed: {r.describe()}" for r in enforce_gate(session, rater_ids, min_kappa, min_shared)]
    return lines


def enforce_gate(session: Session, rater_ids: Sequence[int], min_kappa: float | None,
                 min_shared: int | None = None) -> list[GateResult]:
    """Stop (InputError, exit 2) unless every non-teacher rater whose labels are used passes; the results when all
    do (empty without --min-kappa or when only teachers' labels are used)."""
    check_gate_options(min_kappa, min_shared)
    if min_kappa is None:
        return []
    min_shared = MIN_SHARED if min_shared is None else min_shared
    results = agreement_with_teachers(session, rater_ids)
    failing = [r for r in results if r.n < min_shared or r.kappa is None or r.kappa < min_kappa]
    if failing:
        raise InputError("The agreement gate stops this: " + "; ".join(
            f"{r.describe()} (needs kappa >= {min_kappa:g} on at least {min_shared})" for r in failing) + ".",
                         "have teachers rate more of what the judge rated (`rater rate`), calibrate it "
                         "(`rater calibrate`), or leave its labels out with --rater")
    return results
