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
