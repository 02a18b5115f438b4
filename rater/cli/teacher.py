"""Teacher commands: the rating screen (`rate`), blind evaluation sets (`eval build|rate|list`) and the study's
rules (`study overlap`)."""

import getpass
import zlib
from typing import List, Optional

import typer

from rater.cli import app
from rater.core.domain import RaterKind
from rater.core.errors import InputError
from rater.core.text import plural
from rater.evaluation.evalsets import build_eval_set, eval_set_progress
from rater.raters.runner import Queue
from rater.store.engine import session_scope
from rater.store.items import ItemFilter, check_sources
from rater.store.leases import overlap_progress, resolve_overlap, set_study_overlap, study_overlap
from rater.store.ratings import check_raters, eval_set_id_of, get_or_create_rater, rated_item_ids, rater_acceptance

eval_app = typer.Typer(help="Blind evaluation sets: build, rate, list.")
app.add_typer(eval_app, name="eval")
study_app = typer.Typer(help="Rules every teacher of the study follows.")
app.add_typer(study_app, name="study")

OVERLAP_HELP = ("Share the work out: each item goes to teachers until K of them have rated it (stored with the "
                "study, so every teacher follows it; default: the study's rule, else everyone rates everything).")


def default_rater_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "teacher"


def _run_app(engine, **kwargs) -> None:
    from rater.tui.app import build_app  # Textual loads only for the screens

    build_app(engine, **kwargs).run()


def run_overlap(engine, asked: int | None, eval_set: str | None = None) -> int | None:
    """The overlap this teacher's run follows (the study's; set by the first teacher who asks for one)."""
    with session_scope(engine) as session:
        return resolve_overlap(session, eval_set_id=eval_set_id_of(session, eval_set), asked=asked)


def _teacher(engine, name: str, eval_set: str | None = None) -> bool:
    """Register the teacher (a name of a judge or rule rater is refused before any screen opens); True when the
    teacher has rated nothing in this scope yet."""
    with session_scope(engine) as session:
        rater_id = get_or_create_rater(session, name=name, kind=RaterKind.human).id
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
    overlap = run_overlap(ctx.obj.engine, overlap)
    _teacher(ctx.obj.engine, rater_name)
    _run_app(ctx.obj.engine, rater_name=rater_name, queue=Queue(ItemFilter(tuple(source), split), overlap=overlap),
             shuffle_seed=seed if order == "random" else None)


@eval_app.command("build")
def eval_build(ctx: typer.Context, name: str = typer.Argument(..., help="Name of the new set."),
               sources: str = typer.Option(..., help="Comma-separated sources, e.g. human,sft,dpo."),
               items: int = typer.Option(100, help="Items in the set."),
               per_item: int = typer.Option(4, help="Distractors shown per item."),
               max_per_source: int = typer.Option(2, help="At most this many per source on one item."),
               split: str = typer.Option("test", help="Split to draw items from (or all)."),
               seed: int = typer.Option(0, help="Seed of the draw.")) -> None:
    """Draw a blind evaluation set: per item, distractors from several sources, order shuffled."""
    with session_scope(ctx.obj.engine) as session:
        result = build_eval_set(session, name=name, sources=[s.strip() for s in sources.split(",") if s.strip()],
                                items=items, per_item=per_item, max_per_source=max_per_source, split=split, seed=seed)
    ctx.obj.console.print(result.describe(name))


@eval_app.command("rate")
def eval_rate(ctx: typer.Context, name: str = typer.Argument(..., help="The evaluation set."),
              as_name: Optional[str] = typer.Option(None, "--as", help="Your rater name (default: your user name)."),
              shuffle_per_rater: bool = typer.Option(False, help="Show the items in an order of your own."),
              overlap: Optional[int] = typer.Option(None, metavar="K", help=OVERLAP_HELP)) -> None:
    """Rate an evaluation set blind: question, answer and distractors, never their source."""
    rater_name = as_name or default_rater_name()
    overlap = run_overlap(ctx.obj.engine, overlap, name)
    first_time = _teacher(ctx.obj.engine, rater_name, name)
    seed = zlib.crc32(rater_name.encode()) if shuffle_per_rater else None
    _run_app(ctx.obj.engine, rater_name=rater_name, queue=Queue(eval_set=name, overlap=overlap), blind=True,
             shuffle_seed=seed, show_instructions=first_time)


@eval_app.command("list")
def eval_list(ctx: typer.Context) -> None:
    """Evaluation sets and each rater's progress."""
    with session_scope(ctx.obj.engine) as session:
        report = eval_set_progress(session)
        shared = {}
        for name, _size, _done in report:
            eval_set_id = eval_set_id_of(session, name)
            if (k := study_overlap(session, eval_set_id=eval_set_id)) is not None:
                shared[name] = overlap_progress(session, eval_set_id=eval_set_id, overlap=k)
    if not report:
        ctx.obj.console.print("No evaluation sets yet: build one with `rater eval build`.")
    for name, size, done in report:
        progress = ", ".join(f"{rater} {n}/{size}" for rater, n in done) or "not rated yet"
        ctx.obj.console.print(f"[b]{name}[/b]: {size} items; {progress}")
        if name in shared:
            ctx.obj.console.print(f"  {shared[name].summary}")


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
        eval_set_id = eval_set_id_of(session, set_name)
        if k is not None or off:
            set_study_overlap(session, eval_set_id=eval_set_id, overlap=k)
        current = study_overlap(session, eval_set_id=eval_set_id)
        progress = (overlap_progress(session, eval_set_id=eval_set_id, overlap=current)
                    if current is not None else None)
    if progress is None:
        ctx.obj.console.print(f"{scope}: no overlap; every teacher rates every item.")
        return
    ctx.obj.console.print(f"{scope}: {progress.summary}.")
    for teacher, n in progress.by_teacher.items():
        ctx.obj.console.print(f"  {teacher}: {plural(n, 'item')} rated")


@app.command()
def browse(ctx: typer.Context,
           rater: List[str] = typer.Option([], help="Show only these raters (default: all)."),
           set_name: Optional[str] = typer.Option(None, "--set", help="Only items of this evaluation set."),
           source: List[str] = typer.Option([], help="Only distractors from these sources.")) -> None:
    """Page through rated items with every rater's judgements side by side (d: disagreements only)."""
    from rater.tui.browse import build_browse_app

    where = ItemFilter(tuple(source))
    with session_scope(ctx.obj.engine) as session:
        check_raters(session, rater)
        check_sources(session, source)
        eval_set_id = eval_set_id_of(session, set_name)
        matching = rated_item_ids(session, rater_names=rater, where=where, eval_set_id=eval_set_id)
        anything = matching or rated_item_ids(session, eval_set_id=eval_set_id)
    scope = f"evaluation set {set_name}" if set_name else "preference rating"
    if not anything:
        ctx.obj.console.print(f"Nothing is rated yet in {scope}: there is nothing to browse.")
        return
    if not matching:
        raise InputError(f"No rated items in {scope} match the --rater and --source given.",
                         "`rater browse` without them shows everything rated")
    build_browse_app(ctx.obj.engine, rater_names=rater, where=where, eval_set=set_name).run()
