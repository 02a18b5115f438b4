"""`rater rate`: the teacher's rating screen, and what `rater eval rate` and `rater serve` share with it."""

import getpass
from pathlib import Path
from typing import List, Optional

import typer
from sqlalchemy import make_url

from rater.cli import app
from rater.core.domain import RaterKind
from rater.core.errors import InputError
from rater.core.texts import LANGUAGES
from rater.raters.runner import Queue
from rater.store.access import check_teacher_name
from rater.store.engine import session_scope
from rater.store.items import (
    ItemFilter,
    check_sources,
    check_split_has_items,
    count_items,
    count_items_with_distractors,
)
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


def open_screen(engine, console, **kwargs) -> None:
    """The rating screen, and once it closes a line on what was saved."""
    from rater.tui.app import build_app  # Textual loads only for the screens

    screen = build_app(engine, **kwargs)
    screen.run()
    if screen.return_code in (None, 0):
        console.print(screen.farewell(), soft_wrap=True)


def run_overlap(engine, asked: int | None, eval_set: str | None = None) -> int | None:
    """The overlap this teacher's run follows (the study's; set by the first teacher who asks for one)."""
    with session_scope(engine) as session:
        return Study.named(session, eval_set).follow(session, asked)


LANG_HELP = "The screen's language: sv or en (default: RATER_LANG, else the locale's, else en)."


def check_options(language: str | None, overlap: int | None) -> None:
    """The options every teacher's screen takes, checked before anything is opened or written."""
    check_language(language)
    if overlap is not None and overlap < 1:
        raise InputError(f"--overlap must be 1 or more, got {overlap}.", "pass --overlap 1 or more (or leave it out)")


def check_language(language: str | None) -> None:
    if language is not None and language not in LANGUAGES:
        raise InputError(f"Unknown language {language!r}.", f"use one of: {', '.join(LANGUAGES)}")


def existing_database(ctx: typer.Context) -> None:
    """A rating screen opens only on a database that exists: a mistyped --db path is an error, never a new empty
    file that then says everything is rated."""
    url = make_url(ctx.obj.url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        raise InputError(f"There is no database at {url.database}.",
                         "check --db (or RATER_DB); to start one, import items first: "
                         f"`rater --db {url.database} import FILE` (or `make rate` for the demo)")


def something_to_rate(session, where: ItemFilter) -> None:
    """The items a teacher's screen would show must exist: a source no item has, a split with no items, or an
    empty database is an error that names what there is."""
    if not count_items(session):
        raise InputError("The database has no items to rate.", "import some first (`rater import FILE`, or `rater demo`)")
    check_sources(session, where.sources)
    check_split_has_items(session, where.split)
    if not count_items_with_distractors(session, where=where):
        raise InputError("No item here has distractors to rate" + (f" from {', '.join(where.sources)}" if where.sources
                                                                   else "") + ".",
                         "generate some (`rater generate`) or import items with distractors")


def register_teacher(engine, name: str, eval_set: str | None = None) -> bool:
    """Register the teacher (a name of a judge or rule rater is refused before any screen opens); True when the
    teacher has rated nothing in this scope yet (the screen then opens on the instructions)."""
    check_teacher_name(name)
    with session_scope(engine) as session:
        rater_id = saved_id(get_or_create_rater(session, name=name, kind=RaterKind.human))
        return rater_acceptance(session, rater_id=rater_id, eval_set_id=eval_set_id_of(session, eval_set))[1] == 0


ORDERS = ("dataset", "random", "uncertain")


def order_by_uncertainty(engine, console) -> bool:
    """Score every item by how unsure the judges are about it (rater/evaluation/uncertainty.py); False, with a
    warning, when no judge has rated anything (the stored order then)."""
    from rater.evaluation.uncertainty import refresh_uncertainty

    with session_scope(engine) as session:
        scored, calibrated = refresh_uncertainty(session)
    if not scored:
        console.print("[yellow]Warning: --order uncertain needs a judge's ratings (`rater judge`), and no judge has "
                      "rated anything: the items come in the stored order.[/yellow]")
        return False
    fitted = (f" ({' and '.join(calibrated)}: also where calibrations fitted to resamples of the teachers' labels so "
              "far disagree, and near the limit they fit)" if calibrated else "")
    console.print(f"Ordered by the judges' uncertainty: {scored} items scored{fitted}; items no judge rated come "
                  "after them.")
    return True


@app.command()
def rate(ctx: typer.Context,
         as_name: Optional[str] = typer.Option(None, "--as", help="Your rater name (default: your user name)."),
         source: List[str] = typer.Option([], help="Only distractors from these sources."),
         split: str = typer.Option("all", help="train, dev, test or all."),
         order: str = typer.Option("dataset", help="dataset (stored order), random, or uncertain (the items the "
                                                   "judges are least sure about first; items no judge rated last)."),
         seed: int = typer.Option(0, help="Seed for --order random."),
         overlap: Optional[int] = typer.Option(None, metavar="K", help=OVERLAP_HELP),
         lang: Optional[str] = typer.Option(None, "--lang", help=LANG_HELP)) -> None:
    """Rate distractors in the terminal: 1-9 tick, space saves, backspace goes back, h history, esc leaves."""
    if order not in ORDERS:
        raise InputError(f"Unknown order {order!r}.", f"use one of: {', '.join(ORDERS)}")
    check_options(lang, overlap)
    rater_name = default_rater_name() if as_name is None else as_name
    where = ItemFilter(tuple(source), split)
    existing_database(ctx)
    with session_scope(ctx.obj.engine) as session:
        something_to_rate(session, where)
    run_overlap(ctx.obj.engine, overlap)
    first_time = register_teacher(ctx.obj.engine, rater_name)
    uncertain = order == "uncertain" and order_by_uncertainty(ctx.obj.engine, ctx.obj.console)
    notices = ("uncertain_none",) if order == "uncertain" and not uncertain else ()
    open_screen(ctx.obj.engine, ctx.obj.console, rater_name=rater_name, queue=Queue(where, uncertain=uncertain),
                language=lang, notices=notices,
                shuffle_seed=seed if order == "random" else None, show_instructions=first_time)
