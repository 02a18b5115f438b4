"""What every long command shows: a progress bar (description, bar, n / N, live figures, elapsed time), and how it
ends when some of its work failed."""

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rater.core.errors import RaterError
from rater.core.text import plural

EXIT_SOME_FAILED = 3  # a run that finished, but some items (or requests) failed: rerun to retry them


def progress_bar(console: Console, figures: str) -> Progress:
    """A bar whose last text column renders `figures`, a format string over the task's fields."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(figures),
                    TimeElapsedColumn(), console=console)


def end_of_run(console: Console, *, failed: int, succeeded: int, noun: str, nothing: str, hint: str,
               again: str) -> None:
    """A run whose every piece of work failed is an error (exit 2); one where some failed ends with exit code 3 after
    saying so, so scripts notice; otherwise nothing happens."""
    if failed and not succeeded:
        raise RaterError(nothing, hint)
    if failed:
        console.print(f"[yellow]{plural(failed, noun)} failed; {again} (exit code {EXIT_SOME_FAILED}).[/yellow]")
        raise typer.Exit(EXIT_SOME_FAILED)
