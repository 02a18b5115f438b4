"""`rater export sft|pref|kto`: training data from the store, train split by default."""

from pathlib import Path
from typing import List, Optional

import typer

from rater.cli import app
from rater.core.domain import HUMAN_SOURCE
from rater.core.errors import InputError
from rater.core.text import plural
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
from rater.data.split import approximate_tokens, tokenizer_counter
from rater.evaluation.gate import MIN_KAPPA_HELP, MIN_SHARED_HELP, labels_to_use
from rater.store.engine import session_scope
from rater.store.flags import flagged_by_majority
from rater.store.items import check_sources

export_app = typer.Typer(help="Write training data: SFT rows, preference pairs, KTO labels.")


app.add_typer(export_app, name="export")


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
        console.print(f"Left out: {tally.describe()}.")
    if tally.test_rows:
        console.print(f"[yellow]Warning: {plural(tally.test_rows, 'row')} of {count} come from test items "
                      f"(--split {split}): never evaluate a model trained on them on those items.[/yellow]")
    if long_rows[0]:
        how = "by the tokenizer" if tokenizer else "estimated at 3 characters a token"
        console.print(f"[yellow]Warning: {plural(long_rows[0], 'row')} are longer than --max-length {max_length} "
                      f"tokens ({how}); a trainer cuts or drops them.[/yellow]")


FLAGGED_HELP = "Keep items that most of their teachers flagged as broken (left out by default)."


def _gate(console, session, ids, min_kappa: float | None, min_shared: int | None) -> None:
    for line in labels_to_use(session, ids, min_kappa, min_shared):
        console.print(line)


def _tally(session, include_flagged: bool) -> Tally:
    """What the export counts as it leaves rows out; it starts by leaving out items flagged by a majority."""
    return Tally(leave_out=frozenset() if include_flagged else frozenset(flagged_by_majority(session)))


@export_app.command("sft")
def export_sft(ctx: typer.Context,
               output: Path = typer.Option(..., "-o", "--output", help="File to write (.json, or .jsonl for trl)."),
               split: str = typer.Option("train", help=SPLIT_HELP),
               source: List[str] = typer.Option([HUMAN_SOURCE], help="Distractor sources to use as targets."),
               format: str = typer.Option("alpaca", help="alpaca, trl (prompt/completion JSONL) or llamafactory."),
               chat: bool = typer.Option(False, "--chat", help=CHAT_HELP),
               max_length: Optional[int] = typer.Option(None, min=1, help=MAX_LENGTH_HELP),
               tokenizer: Optional[Path] = typer.Option(None, help=TOKENIZER_HELP),
               include_flagged: bool = typer.Option(False, help=FLAGGED_HELP)) -> None:
    """SFT rows in the published prompt format."""
    _check_export(format, output, split, chat=chat)
    long_rows = [0]
    with session_scope(ctx.obj.engine) as session:
        tally = _tally(session, include_flagged)
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
                tokenizer: Optional[Path] = typer.Option(None, help=TOKENIZER_HELP),
                include_flagged: bool = typer.Option(False, help=FLAGGED_HELP),
                min_kappa: Optional[float] = typer.Option(None, help=MIN_KAPPA_HELP),
                min_shared: Optional[int] = typer.Option(None, help=MIN_SHARED_HELP)) -> None:
    """Preference pairs (chosen = accepted, rejected = rejected) from the ratings."""
    _check_export(format, output, split, chat=chat)
    if pairs not in PAIR_STRATEGIES:
        raise InputError(f"Unknown pair strategy {pairs!r}.", f"use one of: {', '.join(PAIR_STRATEGIES)}")
    long_rows = [0]
    with session_scope(ctx.obj.engine) as session:
        tally = _tally(session, include_flagged)
        ids = rater_ids(session, rater)
        _gate(ctx.obj.console, session, ids, min_kappa, min_shared)
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
               tokenizer: Optional[Path] = typer.Option(None, help=TOKENIZER_HELP),
               include_flagged: bool = typer.Option(False, help=FLAGGED_HELP),
               min_kappa: Optional[float] = typer.Option(None, help=MIN_KAPPA_HELP),
               min_shared: Optional[int] = typer.Option(None, help=MIN_SHARED_HELP)) -> None:
    """One row per rated distractor with a boolean label."""
    _check_export(format, output, split, ("trl", "llamafactory"), chat=chat)
    long_rows, labels = [0], []

    def labelled(rows):
        for row in rows:
            labels.append(row[2])
            yield row

    with session_scope(ctx.obj.engine) as session:
        tally = _tally(session, include_flagged)
        ids = rater_ids(session, rater)
        _gate(ctx.obj.console, session, ids, min_kappa, min_shared)
        rows = nonempty(kto_rows(session, raters=ids, split=split, tally=tally),
                        lambda: no_rows_error(session, "rated distractors", split, ids, tally))
        count = write_kto(_counted(labelled(rows), max_length, tokenizer, long_rows), output, format, chat)
    _export_notes(ctx.obj.console, count, "KTO row", output, tally, split, max_length, tokenizer, long_rows)
    if (warning := kto_balance(labels)) is not None:
        ctx.obj.console.print(f"[yellow]Warning: {warning}[/yellow]")
