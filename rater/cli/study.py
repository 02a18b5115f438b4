"""`rater study`: the rules every teacher of the study follows."""

from typing import Optional

import typer

from rater.cli import app
from rater.core.errors import InputError
from rater.core.text import plural
from rater.store.engine import session_scope
from rater.store.study import Study

study_app = typer.Typer(help="Rules every teacher of the study follows.")


app.add_typer(study_app, name="study")


@study_app.command("overlap")
def study_overlap_command(
        ctx: typer.Context,
        k: Optional[int] = typer.Argument(None, metavar="[K]", help="Teachers per item; leave out to show the rule."),
        set_name: Optional[str] = typer.Option(None, "--set", help="The evaluation set (default: preference rating)."),
        off: bool = typer.Option(False, "--off", help="Stop sharing out: everyone rates everything.")) -> None:
    """Show or set how many teachers rate each item (work shared out), for preference rating or one set."""
    if k is not None and off:
        raise InputError("Pass either K or --off, not both.", "e.g. `rater study overlap 2` or `rater study overlap --off`")
    scope = f"evaluation set {set_name}" if set_name else "preference rating"
    with session_scope(ctx.obj.engine) as session:
        study = Study.named(session, set_name)
        if k is not None or off:
            study.set_overlap(session, k)
        progress = study.progress(session)
    if progress is None:
        ctx.obj.console.print(f"{scope}: no overlap; every teacher rates every item.")
        return
    ctx.obj.console.print(f"{scope}: {progress.summary}.")
    for teacher, n in progress.by_teacher.items():
        ctx.obj.console.print(f"  {teacher}: {plural(n, 'item')} rated")


@study_app.command("status")
def study_status_command(
        ctx: typer.Context,
        set_name: Optional[str] = typer.Option(None, "--set", help="An evaluation set (default: preference rating)."),
        split: str = typer.Option("all", help="Preference rating: train, dev, test or all."),
        output: str = typer.Option("table", "--format", help="table or json.")) -> None:
    """The study as the teachers see it: items done and lacking K, per split and source; each teacher's items,
    pace, share accepted and agreement with the others so far; and who holds which item now."""
    import json

    from rater.evaluation.status import study_status
    from rater.store.items import ItemFilter, check_split_has_items
    from rater.store.ratings import eval_set_id_of

    if output not in ("table", "json"):
        raise InputError(f"There is no format {output!r}.", "pass --format table or --format json")
    where = ItemFilter(split=split)
    with session_scope(ctx.obj.engine) as session:
        eval_set_id = eval_set_id_of(session, set_name) if set_name else None
        if set_name is None and split != "all":
            check_split_has_items(session, split)
        status = study_status(session, eval_set_id=eval_set_id, where=where,
                              scope=f"evaluation set {set_name}" if set_name else "preference rating")
    console = ctx.obj.console
    if output == "json":
        console.print_json(json.dumps(status.as_json()))
        return
    from rich.table import Table

    rule = f"overlap {status.overlap}" if status.overlap else "no overlap (done: rated by a teacher)"
    console.print(f"[b]{status.scope}[/b], {rule}: {plural(status.items, 'item')}, {status.done} done, "
                  f"{status.lacking} lacking, {status.beyond_k} with a rating beyond K")
    for name, counts in status.by_split.items():
        console.print(f"  split {name}: {counts['done']} of {plural(counts['items'], 'item')} done")
    for source, figures in status.by_source.items():
        rate = figures["accepted_rate"]
        console.print(f"  source {source}: {figures['rated']} teacher ratings, "
                      f"{'-' if rate is None else f'{rate:.0%}'} accepted")
    if status.teachers:
        table = Table("teacher", "items", "median s/item", "accepted", "kappa vs others (n)", "flagged", "last active")
        for name, t in status.teachers.items():
            kappa = "-" if t.kappa is None else f"{t.kappa:.2f}"
            table.add_row(name + (" [yellow](fast)[/]" if t.fast else ""), str(t.items),
                          "-" if t.median_seconds is None else f"{t.median_seconds:.1f}",
                          "-" if t.accepted_rate is None else f"{t.accepted_rate:.0%}", f"{kappa} ({t.kappa_n})",
                          str(t.flagged), t.last_active or "-")
        console.print(table)
        if any(t.fast for t in status.teachers.values()):
            console.print(f"[yellow]{status.fast_rule}[/]")
        if all(t.kappa_n == 0 for t in status.teachers.values()):
            console.print("kappa needs two teachers on the same items"
                          + (f"; this study has overlap {status.overlap}" if status.overlap == 1 else ""))
    else:
        console.print("No teacher has rated anything yet.")
    if status.flags:
        console.print(f"[b]{plural(len(status.flags), 'flag')}[/b] (items teachers found broken):")
        for f in status.flags:
            out = " [left out of exports: flagged by most of its teachers]" if f["left_out_of_exports"] else ""
            console.print(f"  item {f['item']} ({f['question']}) by {f['teacher']}: {f['note'] or '(no note)'}{out}",
                          highlight=False)
    for hold in status.held:
        console.print(f"  held now: item {hold['item']} by {hold['teacher']} since {hold['since']}")
