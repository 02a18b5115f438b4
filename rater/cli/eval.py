"""`rater eval build|rate|list`: blind evaluation sets."""

import zlib
from typing import Optional

import typer

from rater.cli import app
from rater.cli.rate import (
    LANG_HELP,
    OVERLAP_HELP,
    check_options,
    default_rater_name,
    existing_database,
    open_screen,
    register_teacher,
    run_overlap,
)
from rater.core.text import plural
from rater.evaluation.evalsets import build_eval_set, eval_set_progress
from rater.raters.runner import Queue
from rater.store.engine import session_scope
from rater.store.study import Study

eval_app = typer.Typer(help="Blind evaluation sets: build, rate, list.")


app.add_typer(eval_app, name="eval")


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
              overlap: Optional[int] = typer.Option(None, metavar="K", help=OVERLAP_HELP),
              lang: Optional[str] = typer.Option(None, "--lang", help=LANG_HELP)) -> None:
    """Rate an evaluation set blind: question, answer and distractors, never their source."""
    check_options(lang, overlap)
    rater_name = default_rater_name() if as_name is None else as_name
    existing_database(ctx)
    run_overlap(ctx.obj.engine, overlap, name)
    first_time = register_teacher(ctx.obj.engine, rater_name, name)
    seed = zlib.crc32(rater_name.encode()) if shuffle_per_rater else None
    open_screen(ctx.obj.engine, ctx.obj.console, rater_name=rater_name, queue=Queue(eval_set=name), blind=True,
                language=lang, shuffle_seed=seed, show_instructions=first_time)


@eval_app.command("list")
def eval_list(ctx: typer.Context) -> None:
    """Evaluation sets and each rater's progress."""
    with session_scope(ctx.obj.engine) as session:
        report = eval_set_progress(session)
        shared = {}
        for name, _size, _done in report:
            if (progress := Study.named(session, name).progress(session)) is not None:
                shared[name] = progress
    if not report:
        ctx.obj.console.print("No evaluation sets yet: build one with `rater eval build`.")
    for name, size, done in report:
        counts = ", ".join(f"{rater} {n}/{size}" for rater, n in done) or "not rated yet"
        ctx.obj.console.print(f"[b]{name}[/b]: {plural(size, 'item')}; {counts}")
        if name in shared:
            ctx.obj.console.print(f"  {shared[name].summary}")
