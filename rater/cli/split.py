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
