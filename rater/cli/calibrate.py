"""`rater calibrate`: a judge's acceptance rule fitted to the teachers."""

import json
from pathlib import Path
from typing import Optional

import typer

from rater.cli import app
from rater.evaluation.render import number
from rater.store.engine import session_scope
from rater.store.ratings import eval_set_id_of, find_rater


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
    from rater.evaluation.calibration import calibrate as fit
    from rater.evaluation.calibration import load_cases, reapply
    from rater.judge.config import save_calibration

    teachers = [a.strip() for a in against.split(",") if a.strip()]
    with session_scope(ctx.obj.engine) as session:
        cases = load_cases(session, judge=judge, against=teachers, eval_set_id=eval_set_id_of(session, set_name))
    result = fit(cases, folds=folds, seed=seed, min_shared=min_shared)
    console = ctx.obj.console
    console.print(f"{result.shared} distractors rated by {judge} and {', '.join(teachers)}")
    for label, card in (("before", result.before), ("after (cross-validated)", result.after)):
        console.print(f"{label:>24}: kappa {number(card.kappa)}, precision {number(card.precision)}, "
                      f"recall {number(card.recall)}, judge accepts {card.judge_rate:.1%} vs teachers "
                      f"{card.human_rate:.1%} (gap {card.gap:+.1%})")
    console.print(f"fitted rule: {result.rule.as_dict()}")
    if save:
        with session_scope(ctx.obj.engine) as session:
            record = find_rater(session, name=judge)  # (load_cases checked that it exists)
            settings = json.loads(record.settings if record else "{}")
        path = save_calibration(judge, result.rule, config, against=teachers, model=settings.get("model") or judge,
                                base_url=settings.get("base_url"))
        with session_scope(ctx.obj.engine) as session:
            changed = reapply(session, judge=judge, rule=result.rule)
        console.print(f"saved to {path}; {changed} stored ratings of {judge} changed (history kept)")
