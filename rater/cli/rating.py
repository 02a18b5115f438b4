"""Rating commands: list raters and run a non-interactive rater headless over the store."""

import asyncio
from typing import List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rater.cli import app
from rater.raters import installed_raters, load_rater
from rater.runner import Queue, run_rater
from rater.store import ItemFilter


@app.command("raters")
def list_raters(ctx: typer.Context) -> None:
    """The installed raters (plugins of the `rater.raters` entry-point group)."""
    for name in installed_raters():
        ctx.obj.console.print(name)


@app.command()
def judge(ctx: typer.Context,
          rater: str = typer.Option("rules", "--rater", help="Installed rater to run (see `rater raters`)."),
          as_name: Optional[str] = typer.Option(None, "--as", help="Name the ratings are stored under."),
          source: List[str] = typer.Option([], help="Only distractors from these sources."),
          split: Optional[str] = typer.Option(None, help="Only items of this split (train, dev, test)."),
          dataset: Optional[str] = typer.Option(None, help="Only items of this dataset."),
          eval_set: Optional[str] = typer.Option(None, help="Rate an evaluation set's distractors, in its order."),
          limit: Optional[int] = typer.Option(None, help="Rate at most this many items.")) -> None:
    """Rate distractors headless; only what this rater has not rated yet, each item committed at once."""
    console = ctx.obj.console
    instance = load_rater(rater)(as_name)
    queue = Queue(ItemFilter(tuple(source), split, dataset), eval_set, limit)
    counts = {"accepted": 0, "judged": 0}
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(f"{instance.name}", total=None, rate="")

        def started(total: int) -> None:
            progress.update(task, total=total)

        def rated(_item, judgements) -> None:
            counts["judged"] += len(judgements)
            counts["accepted"] += sum(j.accepted for j in judgements)
            progress.update(task, advance=1, rate=f"accepted {counts['accepted'] / counts['judged']:.1%}")

        summary = asyncio.run(run_rater(instance, ctx.obj.engine, queue, on_item=rated, on_start=started))
    console.print(f"{instance.name}: rated {summary.items} items, {summary.judgements} distractors, "
                  f"accepted {summary.accepted_rate:.1%}; skipped {summary.skipped}; failed {len(summary.failures)}")
    for failure in summary.failures[:10]:
        console.print(f"[red]{failure}[/red]")
