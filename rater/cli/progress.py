"""The progress bar every long command shows: description, bar, n / N, live figures and elapsed time."""

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def progress_bar(console: Console, figures: str) -> Progress:
    """A bar whose last text column renders `figures`, a format string over the task's fields."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(figures),
                    TimeElapsedColumn(), console=console)
