"""`rater rate`: the teacher's rating screen, and what `rater eval rate` and `rater serve` share with it."""

import getpass
from typing import List, Optional

import typer

from rater.cli import app
from rater.core.domain import RaterKind
from rater.core.errors import InputError
from rater.raters.runner import Queue
from rater.store.engine import session_scope
from rater.store.items import ItemFilter
from rater.store.ratings import eval_set_id_of, get_or_create_rater, rater_acceptance
from rater.store.study import Study
from rater.store.tables import saved_id

OVERLAP_HELP = ("Share the work out: each item goes to teachers until K of them have rated it (stored with the "
                "study, so every teacher follows it; default: the study's rule, else everyone rates everything).")


def default_rater_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "teacher"


def open_screen(engine, **kwargs) -> None:
    from rater.tui.app import build_app  # Textual loads only for the screens

    build_app(engine, **kwargs).run()


def run_overlap(engine, asked: int | None, eval_set: str | None = None) -> int | None:
    """The overlap this teacher's run follows (the study's; set by the first teacher who asks for one)."""
    with session_scope(engine) as session:
        return Study.named(session, eval_set).follow(session, asked)


def register_teacher(engine, name: str, eval_set: str | None = None) -> bool:
    """Register the teacher (a name of a judge or rule rater is refused before any screen opens); True when the
    teacher has rated nothing in this scope yet."""
    with session_scope(engine) as session:
        rater_id = saved_id(get_or_create_rater(session, name=name, kind=RaterKind.human))
        return rater_acceptance(session, rater_id=rater_id, eval_set_id=eval_set_id_of(session, eval_set))[1] == 0


@app.command()
def rate(ctx: typer.Context,
         as_name: Optional[str] = typer.Option(None, "--as", help="Your rater name (default: your user name)."),
         source: List[str] = typer.Option([], help="Only distractors from these sources."),
         split: str = typer.Option("all", help="train, dev, test or all."),
         order: str = typer.Option("dataset", help="dataset (stored order) or random."),
         seed: int = typer.Option(0, help="Seed for --order random."),
         overlap: Optional[int] = typer.Option(None, metavar="K", help=OVERLAP_HELP)) -> None:
    """Rate distractors in the terminal: 1-9 tick, space saves, backspace goes back, esc leaves."""
    if order not in ("dataset", "random"):
        raise InputError(f"Unknown order {order!r}.", "use dataset or random")
    rater_name = as_name or default_rater_name()
    run_overlap(ctx.obj.engine, overlap)
    register_teacher(ctx.obj.engine, rater_name)
    open_screen(ctx.obj.engine, rater_name=rater_name, queue=Queue(ItemFilter(tuple(source), split)),
                shuffle_seed=seed if order == "random" else None)
