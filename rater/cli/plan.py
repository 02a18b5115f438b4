"""`rater plan`: how many more teacher ratings each source needs for a 95 % interval of a given width, with the
teachers' labels alone and, with `--estimate-with JUDGE`, combined with a judge's labels (rater/evaluation/estimate.py)."""

import json
from typing import List, Optional

import typer
from rich.table import Table

from rater.cli import app
from rater.cli.report import check_estimator
from rater.core.errors import InputError
from rater.evaluation.estimate import labels_by_source, teachers_needed
from rater.evaluation.panels import refresh_panels
from rater.evaluation.report import load_rows
from rater.evaluation.uncertainty import NOT_RANDOM
from rater.store.engine import session_scope
from rater.store.items import check_sources
from rater.store.study import uncertain_order_used


def distractors_per_source(session, set_name: str | None, sources: list[str]) -> dict[str, int]:
    """How many distractors each source has in the scope (an evaluation set's slots, or every item's)."""
    from sqlalchemy import distinct, func, select
    from sqlmodel import col

    from rater.store.ratings import eval_set_id_of
    from rater.store.tables import Distractor, EvalSlot

    query = select(col(Distractor.source), func.count(distinct(col(Distractor.id))))
    if set_name:
        query = query.join(EvalSlot, col(EvalSlot.distractor_id) == col(Distractor.id)).where(
            col(EvalSlot.eval_set_id) == eval_set_id_of(session, set_name))
    if sources:
        query = query.where(col(Distractor.source).in_(sources))
    return dict(session.execute(query.group_by(col(Distractor.source))).all())


@app.command()
def plan(ctx: typer.Context,
         target_width: float = typer.Option(..., "--target-width", metavar="W",
                                            help="Width of the 95% interval wanted, as a share (0.1 = ±5 points)."),
         estimate_with: Optional[str] = typer.Option(None, "--estimate-with", metavar="JUDGE",
                                                     help="Also plan with this judge's (or panel's) labels combined "
                                                          "with the teachers' (prediction-powered inference)."),
         source: List[str] = typer.Option([], help="Only these sources."),
         set_name: Optional[str] = typer.Option(None, "--set", help="Plan an evaluation set's judgements."),
         format: str = typer.Option("table", help="table or json.")) -> None:
    """How many more teacher ratings (distractors) each source needs for an interval of width W."""
    if not 0 < target_width < 1:
        raise InputError(f"--target-width {target_width:g} is not a width between 0 and 1.",
                         "e.g. --target-width 0.1 for an interval 10 percentage points wide")
    if format not in ("table", "json"):
        raise InputError(f"Unknown format {format!r}.", "use table or json")
    with session_scope(ctx.obj.engine) as session:
        check_sources(session, source)
        check_estimator(session, estimate_with)
        refresh_panels(session)  # a panel follows its members' newest ratings
        rows = load_rows(session, eval_set=set_name, sources=source)
        pools = distractors_per_source(session, set_name, source)
        not_random = uncertain_order_used(session)
    by_source = labels_by_source(rows, estimate_with or "")
    result = {}
    for label, labels in by_source.items():
        pool = pools.get(label)
        entry = {"teachers_only": teachers_needed(labels, target_width, with_judge=False, pool=pool)}
        if estimate_with:
            entry["with_judge"] = teachers_needed(labels, target_width, with_judge=True, pool=pool)
        result[label] = entry
    if format == "json":
        typer.echo(json.dumps({"target_width": target_width, "judge": estimate_with, "sources": result,
                               **({"note": NOT_RANDOM} if not_random else {})}, indent=2))
        return
    if not any(labels.teachers for labels in by_source.values()):
        ctx.obj.console.print("No teacher has rated anything here yet: have teachers rate a sample first "
                              "(`rater rate --order random`), then plan.")
        if not result:
            return
    table = Table(title=f"Teacher-rated distractors for a 95% interval {target_width * 100:g} percentage points wide",
                  title_justify="left")
    for column in ("source", "distractors", "rated by teachers", "more, teachers only") + (
            (f"more, with {estimate_with}",) if estimate_with else ()):
        table.add_column(column)

    def cell(plan: dict) -> str:
        if plan["need"] is None:
            return "no number of ratings is enough"
        if not plan["reachable"]:
            return f"{plan['more']} (more than the {plan['pool']} there are)"
        return str(plan["more"])

    for label, entry in result.items():
        cells = [label, str(pools.get(label, "-")), str(entry["teachers_only"]["have"]), cell(entry["teachers_only"])]
        if estimate_with:
            cells.append(cell(entry["with_judge"]))
        table.add_row(*cells)
    ctx.obj.console.print(table)
    for label, entry in result.items():
        if note := entry.get("with_judge", {}).get("note"):
            ctx.obj.console.print(f"{label}: {note}.")
    ctx.obj.console.print("These plans assume the labels keep the spread they have so far, and as many distractors "
                          "to an item (an item's distractors count together): rate, then plan again. With a judge the "
                          "plan is never above the teachers' own (the estimate can always do without the judge).")
    if not_random:
        ctx.obj.console.print(f"[yellow]Warning: {NOT_RANDOM}.[/yellow]")
