"""`rater report`: sources and raters compared, with intervals and agreement."""

from pathlib import Path
from typing import List, Optional

import typer

from rater.cli import app
from rater.core.domain import RaterKind
from rater.core.errors import InputError
from rater.evaluation.panels import refresh_panels
from rater.evaluation.render import as_csv, as_json, as_markdown, as_tables, write_plot
from rater.evaluation.report import load_rows, report_data
from rater.evaluation.uncertainty import NOT_RANDOM
from rater.store.engine import session_scope
from rater.store.items import check_sources
from rater.store.ratings import check_raters
from rater.store.study import Study, uncertain_order_used

FORMATS = ("table", "markdown", "csv", "json")


def check_estimator(session, judge: str | None) -> None:
    """--estimate-with names a judge, a rule or a panel of this database (never a teacher)."""
    if judge is None:
        return
    check_raters(session, [judge])
    from sqlalchemy import select
    from sqlmodel import col

    from rater.store.tables import RaterRecord

    kind = session.execute(select(col(RaterRecord.kind)).where(col(RaterRecord.name) == judge)).scalar()
    if kind == "human":
        raise InputError(f"{judge} is a teacher; --estimate-with takes a judge, a rule or a panel.",
                         "the teachers' own figures are the report's; name a judge (`rater raters`)")


def estimate_rows(rows, raters: list[str]) -> list:
    """With --rater: the judges' rows, and the named teachers' (all teachers' when it names none), so the estimate's
    teachers are those of the acceptance figures beside it."""
    named = {r.rater for r in rows if r.kind == RaterKind.human and r.rater in raters}
    return [r for r in rows if r.kind != RaterKind.human or not named or r.rater in named]


def add_estimates(data: dict, rows, judge: str, pools: dict[str, int]) -> None:
    """sources.LABEL.estimate and estimate_differences (rater/evaluation/estimate.py)."""
    from rater.evaluation.estimate import estimates

    per_source, differences = estimates(rows, judge, pools)
    for label, estimate in per_source.items():
        if label in data["sources"]:
            data["sources"][label]["estimate"] = {**estimate, "judge": judge}
    data["estimate_differences"] = differences


def add_judge_trust(session, data: dict) -> None:
    """Each LLM judge's consistency (judges.NAME.consistency) and cost (judges.NAME.cost, at the prices recorded
    with its runs, else the judges file's); panels list their members beside them."""
    import json

    from sqlalchemy import select
    from sqlmodel import col

    from rater.evaluation.consistency import judge_consistency, judge_cost
    from rater.judge.config import judge_prices
    from rater.store.tables import RaterRecord

    records = {name: (rater_id, kind, settings) for rater_id, name, kind, settings in session.execute(
        select(col(RaterRecord.id), col(RaterRecord.name), col(RaterRecord.kind), col(RaterRecord.settings))).all()}
    prices = judge_prices()
    for name, entry in data["judges"].items():
        rater_id, kind, settings = records[name]
        if kind == "llm":
            entry["consistency"] = judge_consistency(session, rater_id)
            recorded = json.loads(settings or "{}")  # the prices its last run used, else the judges file's
            price = ((recorded["price_in"], recorded["price_out"]) if recorded.get("price_in") or recorded.get("price_out")
                     else prices.get(name, (0.0, 0.0)))
            entry["cost"] = judge_cost(session, rater_id, *price)
        elif kind == "panel":
            entry["members"] = json.loads(settings)["members"]


@app.command()
def report(ctx: typer.Context,
           set_name: Optional[str] = typer.Option(None, "--set", help="Only distractors of this evaluation set."),
           source: List[str] = typer.Option([], help="Only these sources."),
           rater: List[str] = typer.Option([], help="Only these raters (default: all; per-source figures use the "
                                                    "teachers when there are any)."),
           format: str = typer.Option("table", help="table, markdown, csv or json."),
           plot: Optional[Path] = typer.Option(None, help="Also write a PNG: acceptance per source and by length."),
           estimate_with: Optional[str] = typer.Option(None, "--estimate-with", metavar="JUDGE",
                                                       help="Also estimate each source's acceptance by the teachers "
                                                            "from this judge's (or panel's) labels on every distractor "
                                                            "and the teachers' labels where they exist "
                                                            "(prediction-powered inference), with 95% intervals.")) -> None:
    """Compare sources and raters: acceptance with 95% intervals, filtered and length views, agreement."""
    if format not in FORMATS:
        raise InputError(f"Unknown report format {format!r}.", f"use one of: {', '.join(FORMATS)}")
    with session_scope(ctx.obj.engine) as session:
        refresh_panels(session)  # panels follow their members' newest ratings
        check_sources(session, source)
        check_raters(session, rater)
        check_estimator(session, estimate_with)
        rows = load_rows(session, eval_set=set_name, sources=source, raters=rater)
        anything = rows or load_rows(session, eval_set=set_name)
        overlap = Study.named(session, set_name).overlap(session)
    scope = f"evaluation set {set_name}" if set_name else "preference rating"
    if not anything:  # the study is simply not rated yet: nothing to report, and no mistake
        ctx.obj.console.print(f"Nothing is rated yet in {scope}: rate with `rater rate` or `rater eval rate` "
                              "(teachers) or `rater judge` (judges and rules), then run the report again.")
        return
    if not rows:
        asked = " and ".join(f"--{name} {', '.join(values)}" for name, values in (("source", source), ("rater", rater))
                             if values)
        raise InputError(f"No ratings in {scope} match {asked}.", "`rater report` without them shows what is rated")
    data = report_data(rows, rater, overlap)
    with session_scope(ctx.obj.engine) as session:
        if estimate_with:
            from rater.cli.plan import distractors_per_source  # (plan imports this module)

            every = rows if not rater else estimate_rows(load_rows(session, eval_set=set_name, sources=source), rater)
            add_estimates(data, every, estimate_with, distractors_per_source(session, set_name, source))
            notes = [NOT_RANDOM] if uncertain_order_used(session) else []
            if rater and not any(r.kind == RaterKind.human for r in rows):
                notes.append(f"--rater {', '.join(rater)} names no teacher, so the acceptance figures are the judges' "
                             "but the estimates beside them use every teacher's labels")
            if notes:
                data["estimate_note"] = "; ".join(notes)
        add_judge_trust(session, data)
    console = ctx.obj.console
    if format == "table":
        console.print(as_tables(data))
    else:
        typer.echo({"markdown": as_markdown, "csv": as_csv, "json": as_json}[format](data), nl=False)
    if plot:
        write_plot(data, plot)
        typer.echo(f"Plot written to {plot}", err=True)  # stderr, so JSON or CSV on stdout stays clean
