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
from rater.evaluation.report import load_rows
from rater.store.engine import session_scope
from rater.store.items import check_sources


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
        rows = load_rows(session, eval_set=set_name, sources=source)
    by_source = labels_by_source(rows, estimate_with or "")
    result = {}
    for label, labels in by_source.items():
        entry = {"teachers_only": teachers_needed(labels, target_width, with_judge=False)}
        if estimate_with:
            entry["with_judge"] = (teachers_needed(labels, target_width, with_judge=True) if labels.judge and labels.teachers
                                   else {"have": len(labels.teachers), "need": None, "more": None, "reachable": False,
                                         "reason": "the judge rated none of this source" if not labels.judge
                                         else "no teacher has rated this source yet"})
        result[label] = entry
    if format == "json":
        typer.echo(json.dumps({"target_width": target_width, "judge": estimate_with, "sources": result}, indent=2))
        return
    if not result:
        ctx.obj.console.print("Nothing is rated yet: rate a sample first (`rater rate`), then plan.")
        return
    table = Table(title=f"Teacher ratings (distractors) for a 95% interval {target_width:.0%} wide", title_justify="left")
    for column in ("source", "rated by teachers", "more, teachers only") + ((f"more, with {estimate_with}",)
                                                                            if estimate_with else ()):
        table.add_column(column)
    for label, entry in result.items():
        cells = [label, str(entry["teachers_only"]["have"]), str(entry["teachers_only"]["more"])]
        if estimate_with:
            judged = entry["with_judge"]
            cells.append(str(judged["more"]) if judged["reachable"] else judged.get("reason") or "not reachable")
        table.add_row(*cells)
    ctx.obj.console.print(table)
    if estimate_with and any(not e["with_judge"]["reachable"] and "reason" not in e["with_judge"] for e in result.values()):
        ctx.obj.console.print("not reachable: the judge's own labels leave an interval wider than that however many "
                              "teachers rate; have the judge rate more of the source.")
    ctx.obj.console.print("Plans take the labels' spread so far as it will be; rate, then plan again.")
