"""Report and calibration commands."""

import json
from pathlib import Path
from typing import List, Optional

import typer

from rater.cli import app
from rater.core.errors import InputError
from rater.evaluation.render import as_csv, as_json, as_markdown, as_tables, number, write_plot
from rater.evaluation.report import load_rows, report_data
from rater.store.engine import session_scope
from rater.store.items import check_sources
from rater.store.ratings import check_raters, eval_set_id_of, find_rater

FORMATS = ("table", "markdown", "csv", "json")


@app.command()
def report(ctx: typer.Context,
           set_name: Optional[str] = typer.Option(None, "--set", help="Only distractors of this evaluation set."),
           source: List[str] = typer.Option([], help="Only these sources."),
           rater: List[str] = typer.Option([], help="Only these raters (default: all; per-source figures use the "
                                                    "teachers when there are any)."),
           format: str = typer.Option("table", help="table, markdown, csv or json."),
           plot: Optional[Path] = typer.Option(None, help="Also write a PNG: acceptance per source and by length.")) -> None:
    """Compare sources and raters: acceptance with 95% intervals, filtered and length views, agreement."""
    if format not in FORMATS:
        raise InputError(f"Unknown report format {format!r}.", f"use one of: {', '.join(FORMATS)}")
    with session_scope(ctx.obj.engine) as session:
        check_sources(session, source)
        check_raters(session, rater)
        rows = load_rows(session, eval_set=set_name, sources=source, raters=rater)
        anything = rows or load_rows(session, eval_set=set_name)
    scope = f"evaluation set {set_name}" if set_name else "preference rating"
    if not anything:  # the study is simply not rated yet: nothing to report, and no mistake
        ctx.obj.console.print(f"Nothing is rated yet in {scope}: rate with `rater rate` or `rater eval rate` "
                              "(teachers) or `rater judge` (judges and rules), then run the report again.")
        return
    if not rows:
        asked = " and ".join(f"--{name} {', '.join(values)}" for name, values in (("source", source), ("rater", rater))
                             if values)
        raise InputError(f"No ratings in {scope} match {asked}.", "`rater report` without them shows what is rated")
    data = report_data(rows, rater)
    console = ctx.obj.console
    if format == "table":
        console.print(as_tables(data))
    else:
        typer.echo({"markdown": as_markdown, "csv": as_csv, "json": as_json}[format](data), nl=False)
    if plot:
        write_plot(data, plot)
        typer.echo(f"Plot written to {plot}", err=True)  # stderr, so JSON or CSV on stdout stays clean


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
            settings = json.loads(find_rater(session, name=judge).settings or "{}")
        path = save_calibration(judge, result.rule, config, against=teachers, model=settings.get("model") or judge,
                                base_url=settings.get("base_url"))
        with session_scope(ctx.obj.engine) as session:
            changed = reapply(session, judge=judge, rule=result.rule)
        console.print(f"saved to {path}; {changed} stored ratings of {judge} changed (history kept)")

