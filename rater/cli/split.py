"""`rater split`: train and test by context, after leaving out over-long texts."""

from pathlib import Path
from typing import Optional

import typer

from rater.cli import app
from rater.core.text import plural
from rater.data.split import approximate_tokens, assign_splits, tokenizer_counter
from rater.store.engine import session_scope


@app.command()
def split(ctx: typer.Context,
          test_fraction: float = typer.Option(0.1, help="Share of kept items that goes to test."),
          seed: int = typer.Option(0, help="Seed for the order in which contexts move to test."),
          max_context_tokens: int = typer.Option(1024, help="Items whose context is longer are excluded."),
          tokenizer: Optional[Path] = typer.Option(None, help="tokenizer.json (or a model folder) for exact "
                                                              "counts; without it 1 token per 3 characters."),
          dataset: Optional[str] = typer.Option(None, help="Only split the contexts of this dataset's items (items "
                                                           "of other datasets on those contexts go along)."),
          keep_splits: Optional[bool] = typer.Option(
              None, "--keep-splits/--resplit",
              help="--keep-splits (the default when items have splits): keep the splits items have (from their "
                   "files' names, e.g. SweQUAD-MC's official dev and test sets, or an earlier split) and split only "
                   "the others. --resplit: split everything again by context (no context in two splits).")) -> None:
    """Split items into train and test by context, so no context is in both."""
    state = ctx.obj
    counter = tokenizer_counter(tokenizer) if tokenizer else approximate_tokens
    with session_scope(state.engine) as session:
        counts = assign_splits(session, test_fraction=test_fraction, seed=seed,
                               max_context_tokens=max_context_tokens, count_tokens=counter, dataset=dataset,
                               keep=keep_splits)
    how = "tokenizer" if tokenizer else "estimate: 3 characters a token"
    dev = f", dev {counts['dev']}" if counts["dev"] else ""
    state.console.print(f"train {counts['train']}{dev}, test {counts['test']}, excluded {counts['excluded']} "
                        f"(context over {max_context_tokens} tokens, {how})")
    how_split = ""
    if counts["kept_splits"]:
        how_split = " (items kept the splits they had; --resplit splits everything again by context)"
    elif counts["resplit"]:
        how_split = " (everything split again by context; --keep-splits keeps the splits items had)"
    state.console.print(f"{plural(counts['changed'], 'item')} changed split, {counts['kept']} kept theirs{how_split}")
    if counts["shared_contexts"]:
        state.console.print(f"[yellow]Note:[/] the kept splits put {plural(counts['shared_contexts'], 'context')} in "
                            "two splits (as the files had them); with --resplit no context is in both")
    if counts["shared"]:
        state.console.print(f"{plural(counts['shared'], 'item')} of other datasets share these contexts and went with them, "
                            "so no context is in both splits")
