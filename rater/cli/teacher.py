"""Teacher commands: the rating screen (`rate`) and blind evaluation sets (`eval build|rate|list`)."""

import getpass
import zlib
from typing import List, Optional

import typer

from rater.cli import app
from rater.core.domain import RaterKind
from rater.core.errors import InputError
from rater.evaluation.evalsets import build_eval_set, eval_set_progress
from rater.raters.runner import Queue
from rater.store.engine import session_scope
from rater.store.items import ItemFilter
from rater.store.ratings import eval_set_id_of, get_or_create_rater, rater_acceptance

eval_app = typer.Typer(help="Blind evaluation sets: build, rate, list.")
app.add_typer(eval_app, name="eval")


def default_rater_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "teacher"


def _run_app(engine, **kwargs) -> None:
    from rater.tui.app import build_app  # Textual loads only for the screens

    build_app(engine, **kwargs).run()


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
         seed: int = typer.Option(0, help="Seed for --order random.")) -> None:
    """Rate distractors in the terminal: 1-9 tick, space saves, backspace goes back, esc leaves."""
    if order not in ("dataset", "random"):
        raise InputError(f"Unknown order {order!r}.", "use dataset or random")
    rater_name = as_name or default_rater_name()
    _teacher(ctx.obj.engine, rater_name)
    _run_app(ctx.obj.engine, rater_name=rater_name, queue=Queue(ItemFilter(tuple(source), split)),
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
    ctx.obj.console.print(f"Built {name}: {result.items} items, {result.slots} slots; "
                          f"{result.left_out} items left out for lack of candidates.")


@eval_app.command("rate")
def eval_rate(ctx: typer.Context, name: str = typer.Argument(..., help="The evaluation set."),
              as_name: Optional[str] = typer.Option(None, "--as", help="Your rater name (default: your user name)."),
              shuffle_per_rater: bool = typer.Option(False, help="Show the items in an order of your own.")) -> None:
    """Rate an evaluation set blind: question, answer and distractors, never their source."""
    rater_name = as_name or default_rater_name()
    first_time = _teacher(ctx.obj.engine, rater_name, name)
    seed = zlib.crc32(rater_name.encode()) if shuffle_per_rater else None
    _run_app(ctx.obj.engine, rater_name=rater_name, queue=Queue(eval_set=name), blind=True, shuffle_seed=seed,
             show_instructions=first_time)


@eval_app.command("list")
def eval_list(ctx: typer.Context) -> None:
    """Evaluation sets and each rater's progress."""
    with session_scope(ctx.obj.engine) as session:
        report = eval_set_progress(session)
    if not report:
        ctx.obj.console.print("No evaluation sets yet: build one with `rater eval build`.")
    for name, size, done in report:
        progress = ", ".join(f"{rater} {n}/{size}" for rater, n in done) or "not rated yet"
        ctx.obj.console.print(f"[b]{name}[/b]: {size} items; {progress}")


@app.command()
def browse(ctx: typer.Context,
           rater: List[str] = typer.Option([], help="Show only these raters (default: all)."),
           set_name: Optional[str] = typer.Option(None, "--set", help="Only items of this evaluation set."),
           source: List[str] = typer.Option([], help="Only distractors from these sources.")) -> None:
    """Page through rated items with every rater's judgements side by side (d: disagreements only)."""
    from rater.tui.browse import build_browse_app

    build_browse_app(ctx.obj.engine, rater_names=rater, where=ItemFilter(tuple(source)), eval_set=set_name).run()
