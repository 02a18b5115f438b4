"""The `rater` command: one Typer app whose commands live in sibling modules; errors become red panels."""

import os
import sys
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError
from typer.core import TyperGroup

from rater.core.errors import RaterError

EXIT_USER_ERROR = 2
EXIT_BUG = 1


def show_error(error: RaterError) -> None:
    body = escape(error.message) + (f"\n\n[bold]Fix:[/bold] {escape(error.hint)}" if error.hint else "")
    Console(stderr=True).print(Panel(body, title="rater: error", title_align="left", border_style="red"))


def show_bug(error: BaseException, ctx, argv: list[str]) -> None:
    from rater.cli.bugs import command_line, write_bug_log

    command = command_line(argv)
    url = getattr(ctx.obj, "url", "") or ""
    try:
        password = make_url(url).password or "" if url else ""
    except Exception:  # noqa: BLE001 - an unreadable URL has no password to mask
        password = ""
    try:
        where = f"The full traceback is in {write_bug_log(error, command, (password,) if password else ())}"
    except OSError:
        where = "No log file could be written."
    body = (f"[bold]This is a bug in rater[/bold], not something you did wrong.\n\nCommand: {escape(command)}\n"
            f"Error: {escape(type(error).__name__)}\n{escape(where)}\n\nPlease report it with that file "
            "(passwords and API keys are masked in it).")
    Console(stderr=True).print(Panel(body, title="rater: this is a bug", title_align="left", border_style="red"))


class RaterGroup(TyperGroup):
    """Turns a RaterError (or a database failure) anywhere below into a panel on stderr and exit code 2, and any
    other exception (a bug) into a short panel naming a log file, exit code 1: never a traceback."""

    argv: list[str] = []

    def main(self, args=None, *rest, **options):
        self.argv = list(sys.argv[1:] if args is None else args)  # the command line, for a bug's panel and log
        return super().main(args, *rest, **options)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RaterError as error:
            show_error(error)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except SQLAlchemyError as error:  # a database failure mid-command: locked, read-only, full disk, server gone
            from rater.store.engine import store_error

            show_error(store_error(error, getattr(ctx.obj, "url", "sqlite:///rater.db")))
            raise typer.Exit(EXIT_USER_ERROR) from None
        except (typer.TyperException, typer.Exit, typer.Abort):  # usage errors, exits and Ctrl-C: Typer's own way
            raise
        except BrokenPipeError:  # the reader of the output went away (`rater serve --help | head`): no more to say
            _reader_gone()
        except Exception as error:  # noqa: BLE001 - a bug: one panel, the traceback in a log file
            show_bug(error, ctx, self.argv)
            raise typer.Exit(EXIT_BUG) from None


app = typer.Typer(cls=RaterGroup, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="rich",
                  help="Rate multiple-choice distractors and turn the ratings into training data.")


@app.callback()
def root(ctx: typer.Context,
         database: str = typer.Option(None, "--db", envvar="RATER_DB", show_default="./rater.db",
                                      help="Database file path or SQLAlchemy URL.")) -> None:
    from rater.cli.state import State

    ctx.obj = State(database)


def main() -> None:
    try:
        sys.exit(app())
    except BrokenPipeError:  # the top-level help, printed before any command runs
        _reader_gone()


def _reader_gone() -> NoReturn:
    """End quietly when the output's reader has gone: Python's own recipe (what is still buffered for stdout would
    raise again as the interpreter exits, so stdout goes to /dev/null)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(1)


# Commands attach themselves to `app` when their modules load; each module is named after the command it holds,
# and `rater --help` lists them in the order of a study: data in, ratings, results, training, the study's people.
# isort: off
from rater.cli import imports, split, generate, judge, rate, eval, browse, report, calibrate  # noqa: E402,F401
from rater.cli import export, train, study, teachers, serve, db, panel, plan  # noqa: E402,F401
# isort: on
