"""The `rater` command: one Typer app whose commands live in sibling modules; errors become red panels."""

import sys

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from typer.core import TyperGroup

from rater.core.errors import RaterError

EXIT_USER_ERROR = 2


def show_error(error: RaterError) -> None:
    body = escape(error.message) + (f"\n\n[bold]Fix:[/bold] {escape(error.hint)}" if error.hint else "")
    Console(stderr=True).print(Panel(body, title="rater: error", title_align="left", border_style="red"))


class RaterGroup(TyperGroup):
    """Turns a RaterError anywhere below into a panel on stderr and exit code 2, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RaterError as error:
            show_error(error)
            raise typer.Exit(EXIT_USER_ERROR) from None


app = typer.Typer(cls=RaterGroup, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="rich",
                  help="Rate multiple-choice distractors and turn the ratings into training data.")


@app.callback()
def root(ctx: typer.Context,
         db: str = typer.Option(None, "--db", envvar="RATER_DB", show_default="./rater.db",
                                help="Database file path or SQLAlchemy URL.")) -> None:
    from rater.cli.state import State

    ctx.obj = State(db)


def main() -> None:
    sys.exit(app())


# Commands attach themselves to `app` when their modules load.
from rater.cli import data, generating, rating, reporting, teacher, train  # noqa: E402,F401
