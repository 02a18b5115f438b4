"""Data commands: import, demo, split, export and db stats."""

from collections import Counter
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table
from sqlalchemy import Integer, cast, func, select

from rater.cli import app
from rater.core.domain import HUMAN_SOURCE
from rater.core.errors import InputError
from rater.core.text import plural
from rater.data.demo import load_demo
from rater.data.exports import (
    EXPORT_FORMATS,
    PAIR_STRATEGIES,
    Tally,
    check_split,
    check_suffix,
    kto_balance,
    kto_rows,
    measured,
    no_rows_error,
    nonempty,
    nothing_in_split,
    preference_rows,
    rater_ids,
    sft_rows,
    sourced_by_split,
    write_kto,
    write_pref,
    write_sft,
)
from rater.data.formats import FORMATS, parse_file
from rater.data.importing import ingest
from rater.data.split import approximate_tokens, assign_splits, tokenizer_counter
from rater.store.engine import safe_url, session_scope
from rater.store.items import check_sources, count_items
from rater.store.leases import overlap_progress, study_overlap
from rater.store.tables import Distractor, EvalSet, Item, Rater, Rating

db_app = typer.Typer(help="Inspect the database.")
export_app = typer.Typer(help="Write training data: SFT rows, preference pairs, KTO labels.")
app.add_typer(db_app, name="db")
app.add_typer(export_app, name="export")


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
        from rater.cli.generating import generate_into
        from rater.generators.baseline import BaselineGenerator

        summary = generate_into(state.engine, state.console, BaselineGenerator(), source="baseline", num=baseline,
                                split="all", limit=None, dataset="demo")
        state.console.print(f"Added {summary.added} baseline distractors.")


@app.command()
def split(ctx: typer.Context,
          test_fraction: float = typer.Option(0.1, help="Share of kept items that goes to test."),
          seed: int = typer.Option(0, help="Seed for the order in which contexts move to test."),
          max_context_tokens: int = typer.Option(1024, help="Items whose context is longer are excluded."),
          tokenizer: Optional[Path] = typer.Option(None, help="tokenizer.json (or a model folder) for exact "
                                                              "counts; without it 1 token per 3 characters."),
          dataset: Optional[str] = typer.Option(None, help="Only split the contexts of this dataset's items (items "
                                                           "of other datasets on those contexts go along).")) -> None:
    """Split items into train and test by context, so no context is in both."""
    state = ctx.obj
    counter = tokenizer_counter(tokenizer) if tokenizer else approximate_tokens
    with session_scope(state.engine) as session:
        counts = assign_splits(session, test_fraction=test_fraction, seed=seed,
                               max_context_tokens=max_context_tokens, count_tokens=counter, dataset=dataset)
    how = "tokenizer" if tokenizer else "estimate: 3 characters a token"
    state.console.print(f"train {counts['train']}, test {counts['test']}, excluded {counts['excluded']} "
                        f"(context over {max_context_tokens} tokens, {how})")
    if counts["shared"]:
        state.console.print(f"{plural(counts['shared'], 'item')} of other datasets share these contexts and went with them, "
                            "so no context is in both splits")


CHAT_HELP = ("trl only: conversational rows (messages lists), which TRL wraps in the model's chat template, as "
             "`rater train` and the hf generator do.")
SPLIT_HELP = ("train (default), dev, test or all. Test items become training data only when asked for by name "
              "(test or all), with a warning.")
MAX_LENGTH_HELP = "Warn about rows longer than this many tokens (prompt and answer), as a trainer would cut them."
TOKENIZER_HELP = "tokenizer.json (or a model folder) for exact counts with --max-length (default: 3 characters a token)."


def _check_export(fmt: str, output: Path, split: str, allowed=EXPORT_FORMATS, chat: bool = False) -> None:
    if fmt not in allowed:
        raise InputError(f"Unknown export format {fmt!r}.", f"use one of: {', '.join(allowed)}")
    if chat and fmt != "trl":
        raise InputError(f"--chat applies to --format trl, not {fmt}.",
                         "LLaMA-Factory applies its own template (its `template` setting)")
    check_split(split)
    check_suffix(output, fmt)


def _counted(rows, max_length: int | None, tokenizer: Path | None, long_rows: list[int], render=None):
    """The rows, measured against --max-length when it is given."""
    if max_length is None:
        if tokenizer is not None:
            raise InputError("--tokenizer only counts tokens for --max-length.", "pass --max-length N as well")
        return rows
    counter = tokenizer_counter(tokenizer) if tokenizer else approximate_tokens
    return measured(rows, counter, max_length, long_rows, **({"render": render} if render else {}))


def _export_notes(console, count: int, what: str, output: Path, tally: Tally, split: str,
                  max_length: int | None, tokenizer: Path | None, long_rows: list[int]) -> None:
    console.print(f"Wrote {plural(count, what)} to {output}")
    if tally.describe():
        console.print(f"Left out (they would teach nothing): {tally.describe()}.")
    if tally.test_rows:
        console.print(f"[yellow]Warning: {plural(tally.test_rows, 'row')} of {count} come from test items "
                      f"(--split {split}): never evaluate a model trained on them on those items.[/yellow]")
    if long_rows[0]:
        how = "by the tokenizer" if tokenizer else "estimated at 3 characters a token"
        console.print(f"[yellow]Warning: {plural(long_rows[0], 'row')} are longer than --max-length {max_length} "
                      f"tokens ({how}); a trainer cuts or drops them.[/yellow]")


@export_app.command("sft")
def export_sft(ctx: typer.Context,
               output: Path = typer.Option(..., "-o", "--output", help="File to write (.json, or .jsonl for trl)."),
               split: str = typer.Option("train", help=SPLIT_HELP),
               source: List[str] = typer.Option([HUMAN_SOURCE], help="Distractor sources to use as targets."),
               format: str = typer.Option("alpaca", help="alpaca, trl (prompt/completion JSONL) or llamafactory."),
               chat: bool = typer.Option(False, "--chat", help=CHAT_HELP),
               max_length: Optional[int] = typer.Option(None, min=1, help=MAX_LENGTH_HELP),
               tokenizer: Optional[Path] = typer.Option(None, help=TOKENIZER_HELP)) -> None:
    """SFT rows in the published prompt format."""
    _check_export(format, output, split, chat=chat)
    tally, long_rows = Tally(), [0]
    with session_scope(ctx.obj.engine) as session:
        check_sources(session, source)
        rows = nonempty(sft_rows(session, split=split, sources=source, tally=tally), lambda: nothing_in_split(
            f"items with {', '.join(source)} distractors", split, sourced_by_split(session, sources=source)))
        count = write_sft(_counted(rows, max_length, tokenizer, long_rows, render=str), output, format, chat)
    _export_notes(ctx.obj.console, count, "SFT row", output, tally, split, max_length, tokenizer, long_rows)


@export_app.command("pref")
def export_pref(ctx: typer.Context,
                output: Path = typer.Option(..., "-o", "--output", help="File to write (.json, or .jsonl for trl)."),
                rater: List[str] = typer.Option([], help="Raters whose ratings count (majority); default all."),
                pairs: str = typer.Option("disjoint", help=f"One of {', '.join(PAIR_STRATEGIES)}."),
                split: str = typer.Option("train", help=SPLIT_HELP),
                format: str = typer.Option("alpaca", help="llamafactory (recommended for LLaMA-Factory), trl, or "
                                                          "alpaca (the published form, byte for byte)."),
                chat: bool = typer.Option(False, "--chat", help=CHAT_HELP),
                max_length: Optional[int] = typer.Option(None, min=1, help=MAX_LENGTH_HELP),
                tokenizer: Optional[Path] = typer.Option(None, help=TOKENIZER_HELP)) -> None:
    """Preference pairs (chosen = accepted, rejected = rejected) from the ratings."""
    _check_export(format, output, split, chat=chat)
    if pairs not in PAIR_STRATEGIES:
        raise InputError(f"Unknown pair strategy {pairs!r}.", f"use one of: {', '.join(PAIR_STRATEGIES)}")
    tally, long_rows = Tally(), [0]
    with session_scope(ctx.obj.engine) as session:
        ids = rater_ids(session, rater)
        rows = nonempty(preference_rows(session, raters=ids, strategy=pairs, split=split, tally=tally),
                        lambda: no_rows_error(session, "preference pairs", split, ids, tally))
        count = write_pref(_counted(rows, max_length, tokenizer, long_rows), output, format, chat)
    _export_notes(ctx.obj.console, count, "preference pair", output, tally, split, max_length, tokenizer, long_rows)


@export_app.command("kto")
def export_kto(ctx: typer.Context,
               output: Path = typer.Option(..., "-o", "--output", help="File to write (.jsonl for trl, .json for "
                                                                       "llamafactory)."),
               rater: List[str] = typer.Option([], help="Raters whose ratings count (majority); default all."),
               split: str = typer.Option("train", help=SPLIT_HELP),
               format: str = typer.Option("trl", help="trl or llamafactory."),
               chat: bool = typer.Option(False, "--chat", help=CHAT_HELP),
               max_length: Optional[int] = typer.Option(None, min=1, help=MAX_LENGTH_HELP),
               tokenizer: Optional[Path] = typer.Option(None, help=TOKENIZER_HELP)) -> None:
    """One row per rated distractor with a boolean label."""
    _check_export(format, output, split, ("trl", "llamafactory"), chat=chat)
    tally, long_rows, labels = Tally(), [0], []
    with session_scope(ctx.obj.engine) as session:
        ids = rater_ids(session, rater)
        rows = nonempty(kto_rows(session, raters=ids, split=split, tally=tally),
                        lambda: no_rows_error(session, "rated distractors", split, ids, tally))
        rows = (labels.append(row[2]) or row for row in rows)
        count = write_kto(_counted(rows, max_length, tokenizer, long_rows), output, format, chat)
    _export_notes(ctx.obj.console, count, "KTO row", output, tally, split, max_length, tokenizer, long_rows)
    if (warning := kto_balance(labels)) is not None:
        ctx.obj.console.print(f"[yellow]Warning: {warning}[/yellow]")


def _table(title: str, header: tuple[str, ...], rows) -> Table:
    table = Table(title=title, title_justify="left")
    for name in header:
        table.add_column(name, justify="left" if name == header[0] else "right")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    return table


@db_app.command("stats")
def db_stats(ctx: typer.Context) -> None:
    """Counts per dataset, split, source and rater, with acceptance rates."""
    console = ctx.obj.console
    with session_scope(ctx.obj.engine) as session:
        console.print(f"Database: {safe_url(ctx.obj.url)}")
        console.print(_table("Items per dataset and split", ("dataset", "split", "items"), session.execute(
            select(Item.dataset, func.coalesce(Item.split, "-"), func.count()).group_by(Item.dataset, Item.split)
            .order_by(Item.dataset, Item.split))))
        console.print(_table("Distractors per source", ("source", "distractors"), session.execute(
            select(Distractor.source, func.count()).group_by(Distractor.source).order_by(Distractor.source))))
        rows = session.execute(select(Rater.name, Rater.kind, func.count(Rating.id), func.sum(cast(Rating.accepted, Integer)))
                               .join(Rating, Rating.rater_id == Rater.id, isouter=True).group_by(Rater.id)
                               .order_by(Rater.name)).all()
        console.print(_table("Ratings per rater", ("rater", "kind", "ratings", "accepted"),
                             [(n, k, c, f"{(a or 0) / c:.1%}" if c else "-") for n, k, c, a in rows]))
        _shared_work(console, session)


def _shared_work(console, session) -> None:
    """Work shared out with an overlap: items each teacher has rated, and items still lacking K ratings."""
    studies = [("preference rating", None), *session.execute(select(EvalSet.name, EvalSet.id)
                                                              .where(EvalSet.overlap.is_not(None))
                                                              .order_by(EvalSet.name)).all()]
    for name, eval_set_id in studies:
        k = study_overlap(session, eval_set_id=eval_set_id)
        if k is None:
            continue
        progress = overlap_progress(session, eval_set_id=eval_set_id, overlap=k)
        console.print(_table(f"Shared out ({name}): {progress.summary}", ("teacher", "items rated"),
                             progress.by_teacher.items()))
