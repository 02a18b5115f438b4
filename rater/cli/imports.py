"""`rater import` and `rater demo`: questions, answers and distractors into the store."""

from collections import Counter
from pathlib import Path
from typing import List, Optional

import typer

from rater.cli import app
from rater.core.text import plural
from rater.data.demo import load_demo
from rater.data.formats import FORMATS, parse_file
from rater.data.importing import ingest
from rater.store.engine import session_scope
from rater.store.items import count_items


def _print_counts(state, added: Counter, records: int) -> None:
    parts = ", ".join(plural(n, k.removesuffix("s"), k) for k, n in sorted(added.items())) or "nothing new"
    state.console.print(f"Read {plural(records, 'record')}; added {parts}.")


@app.command("import")
def import_files(ctx: typer.Context,
                 paths: List[Path] = typer.Argument(..., help="JSON or JSONL files."),
                 format: str = typer.Option("auto", "--format", help=f"auto or one of: {', '.join(FORMATS)}."),
                 dataset: Optional[str] = typer.Option(None, help="Dataset name (default: swequad-mc for "
                                                                  "SweQUAD-MC, else the file name).")) -> None:
    """Import question files; re-importing adds nothing, and a broken file imports nothing."""
    state = ctx.obj
    batches = [parse_file(path, format, dataset) for path in paths]
    with session_scope(state.engine) as session:
        counts = ingest(session, batches=batches)
    for batch in batches:
        state.console.print(f"{batch.path}: {batch.format}, {plural(batch.records, 'record')}, "
                            f"{plural(len(batch.items), 'item')}")
    _print_counts(state, counts.added, counts.records)


@app.command()
def demo(ctx: typer.Context,
         if_empty: bool = typer.Option(False, "--if-empty", help="Only load it into a database with no items."),
         baseline: int = typer.Option(0, help="Also add this many baseline-generated distractors per item.")) -> None:
    """Load the built-in demo set: short Swedish texts with a question, its answer and four distractors."""
    state = ctx.obj
    with session_scope(state.engine) as session:
        if if_empty and (items := count_items(session)):
            state.console.print(f"The database holds {plural(items, 'item')} already: the demo set is not loaded.")
            return
        counts = load_demo(session)
    _print_counts(state, counts.added, counts.records)
    if baseline:
        from rater.cli.generate import generate_into
        from rater.generators.baseline import BaselineGenerator

        summary = generate_into(state.engine, state.console, BaselineGenerator(), source="baseline", num=baseline,
                                split="all", limit=None, dataset="demo")
        state.console.print(f"Added {summary.added} baseline distractors.")
