"""`rater calibrate`: a judge's acceptance rule fitted to the teachers."""

import json
from pathlib import Path
from typing import Optional

import typer

from rater.cli import app
from rater.core.errors import InputError
from rater.evaluation.panels import refresh_panels
from rater.evaluation.render import number
from rater.store.engine import session_scope
from rater.store.ratings import eval_set_id_of, find_rater


def teachers_kappa(session, teachers: list[str], eval_set_id: int | None) -> list[tuple[str, str, float | None, int]]:
    """Cohen's kappa between each two of the teachers on the distractors both rated: (a, b, kappa, n)."""
    from itertools import combinations

    from sqlalchemy import select
    from sqlmodel import col

    from rater.evaluation.agreement import cohen_kappa
    from rater.store.tables import RaterRecord, Rating, rating_scope

    labels: dict[str, dict[int, bool]] = {t: {} for t in teachers}
    for name, distractor_id, accepted in session.execute(
            select(col(RaterRecord.name), col(Rating.distractor_id), col(Rating.accepted))
            .join(RaterRecord, col(RaterRecord.id) == col(Rating.rater_id))
            .where(col(RaterRecord.name).in_(teachers), rating_scope(eval_set_id))):
        labels[name][distractor_id] = bool(accepted)
    pairs = []
    for a, b in combinations(teachers, 2):
        shared = [d for d in labels[a] if d in labels[b]]
        if shared:
            pairs.append((a, b, cohen_kappa([labels[a][d] for d in shared], [labels[b][d] for d in shared]),
                          len(shared)))
    return pairs


def teachers_line(pairs: list[tuple[str, str, float | None, int]], judge_vs: dict[str, float | None]) -> str:
    """The teachers' own agreement (each two of them), and the judge's against each teacher alone (its fitted
    rule): like for like, since a majority of teachers is easier to agree with than any one teacher."""
    if not pairs:
        return ("teachers' own agreement: needs two teachers with shared distractors (pass them in --against), "
                "so the judge's kappa cannot be set beside it")
    text = "teachers' own agreement: " + "; ".join(f"{a} vs {b} kappa {number(k)} (n {n})" for a, b, k, n in pairs)
    kappas = [k for _, _, k, _ in pairs if k is not None]
    judged = {t: k for t, k in judge_vs.items() if k is not None}
    if not kappas or not judged:
        return text
    low, high, mean = min(kappas), max(kappas), sum(judged.values()) / len(judged)
    if low == high:  # one pair of teachers (or all alike): a figure, not a range
        side = "equal to" if mean == low else "above" if mean > high else "below"
        where = f"{side} the teachers' own kappa ({number(low)})"
    else:
        side = "within" if low <= mean <= high else "above" if mean > high else "below"
        where = f"{side} the teachers' range ({number(low)} to {number(high)})"
    return (text + "; the judge (fitted rule) against each teacher alone: "
            + ", ".join(f"{t} {number(k)}" for t, k in judged.items()) + f", on average {number(mean)}: {where}")


@app.command()
def calibrate(ctx: typer.Context,
              judge: str = typer.Option(..., help="The LLM judge's rater name."),
              against: str = typer.Option(..., help="Teacher rater names, comma-separated (majority when several)."),
              folds: int = typer.Option(5, min=2, help="Cross-validation folds, grouped by item."),
              seed: int = typer.Option(0, help="Seed of the fold assignment."),
              min_shared: int = typer.Option(30, help="Refuse with fewer shared ratings than this."),
              save: bool = typer.Option(False, help="Store the rule in $RATER_HOME/calibrations.yaml (beside the judges "
                                                    "file, which is left as it is) and re-decide the judge's stored "
                                                    "ratings with it."),
              set_name: Optional[str] = typer.Option(None, "--set", help="Fit on an evaluation set's judgements "
                                                                         "(default: preference rating)."),
              config: Optional[Path] = typer.Option(None, help="Judges file (default $RATER_HOME/judges.yaml).")) -> None:
    """Fit the judge's acceptance rule to the teachers' decisions, cross-validated by item."""
    from rater.evaluation.agreement import cohen_kappa
    from rater.evaluation.calibration import calibrate as fit
    from rater.evaluation.calibration import load_cases, predict, reapply
    from rater.judge.config import save_calibration

    teachers = [a.strip() for a in against.split(",") if a.strip()]
    with session_scope(ctx.obj.engine) as session:
        refresh_panels(session)  # a panel follows its members' newest ratings
        eval_set_id = eval_set_id_of(session, set_name)
        cases = load_cases(session, judge=judge, against=teachers, eval_set_id=eval_set_id)
        between = teachers_kappa(session, teachers, eval_set_id)
    result = fit(cases, folds=folds, seed=seed, min_shared=min_shared)
    console = ctx.obj.console
    console.print(f"{result.shared} distractors rated by {judge} and {', '.join(teachers)}")
    for label, card in (("before", result.before), ("after (cross-validated)", result.after)):
        console.print(f"{label:>24}: kappa {number(card.kappa)}, precision {number(card.precision)}, "
                      f"recall {number(card.recall)}, judge accepts {card.judge_rate:.1%} vs teachers "
                      f"{card.human_rate:.1%} (gap {card.gap:+.1%})")
    console.print(f"fitted rule: {result.rule.as_dict()}")
    judge_vs: dict[str, float | None] = {}
    if len(teachers) > 1:
        with session_scope(ctx.obj.engine) as session:
            for teacher in teachers:
                alone = load_cases(session, judge=judge, against=[teacher], eval_set_id=eval_set_id).cases
                judge_vs[teacher] = (cohen_kappa([predict(result.rule, c) for c in alone], [c.truth for c in alone])
                                     if alone else None)
    console.print(teachers_line(between, judge_vs))
    worse = (result.after.kappa is not None and result.before.kappa is not None
             and result.after.kappa < result.before.kappa)
    if save and worse:
        raise InputError(f"The fitted rule agrees with the teachers less than {judge}'s own decisions do (kappa "
                         f"{number(result.after.kappa)} cross-validated, against {number(result.before.kappa)}): "
                         "nothing was saved.", "rate more shared distractors and calibrate again; a judge whose "
                                               "scores do not follow the teachers cannot be calibrated")
    if worse:
        console.print(f"Warning: the fitted rule agrees with the teachers less than {judge}'s own decisions "
                      "(cross-validated); --save would refuse it.", style="yellow")
    if save:
        with session_scope(ctx.obj.engine) as session:
            record = find_rater(session, name=judge)  # (load_cases checked that it exists)
            settings = json.loads(record.settings if record else "{}")
        path = save_calibration(judge, result.rule, config, against=teachers, model=settings.get("model") or judge,
                                base_url=settings.get("base_url"), prompt=settings.get("prompt_sha256"))
        with session_scope(ctx.obj.engine) as session:
            changed = reapply(session, judge=judge, rule=result.rule)
        console.print(f"saved to {path}; {changed} stored ratings of {judge} changed (history kept)")
