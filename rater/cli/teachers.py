"""`rater teachers add|list|revoke`: teachers' personal links for `rater serve`."""

from urllib.parse import urlsplit

import typer

from rater.cli import app
from rater.core.errors import InputError
from rater.store.access import add_teacher, list_teachers, revoke_teacher
from rater.store.engine import session_scope

teachers_app = typer.Typer(help="Teachers' personal links for the browser screen: add, list, revoke.")


app.add_typer(teachers_app, name="teachers")


DEFAULT_URL = "http://127.0.0.1:8000"


def check_http_url(url: str, option: str) -> str:
    """An address teachers' browsers open: http or https with a host, nothing else (no javascript:, no file:)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment or \
            any(c.isspace() or not c.isprintable() for c in url.strip()):
        raise InputError(f"{option} must be an http:// or https:// address with a host name, not {url[:80]!r}.",
                         f"pass e.g. {option} https://rater.school.example")
    if parts.path not in ("", "/"):
        raise InputError(f"{option} must be the root of an address (the page lives at /rate), not {url[:80]!r}.",
                         "serve rater on a host name or port of its own")
    return url.strip().rstrip("/")


@teachers_app.command("add")
def teachers_add(ctx: typer.Context, name: str = typer.Argument(..., help="The teacher's rater name."),
                 url: str = typer.Option(DEFAULT_URL, help="The address teachers reach `rater serve` at."),
                 organizer: bool = typer.Option(False, "--organizer", help="A link to the study's status page (/study) "
                                                                          "instead of rating.")) -> None:
    """Give a teacher a personal link (shown once; only a hash of its secret is stored)."""
    url = check_http_url(url, "--url")
    with session_scope(ctx.obj.engine) as session:
        token = add_teacher(session, name=name, organizer=organizer)
    what = "Organizer's link (the study's status page)" if organizer else "Personal link"
    ctx.obj.console.print(f"{what} for [b]{name}[/b] (send it to them only; it is shown once):")
    ctx.obj.console.print(f"{url}/t/{token}", soft_wrap=True, highlight=False)


@teachers_app.command("list")
def teachers_list(ctx: typer.Context) -> None:
    """Teachers with links, and whether each link is active."""
    with session_scope(ctx.obj.engine) as session:
        links = list_teachers(session)
    if not links:
        ctx.obj.console.print("No links yet: `rater teachers add NAME` makes one.")
    for link in links:
        state = f"revoked {link.revoked_at:%Y-%m-%d %H:%M}" if link.revoked_at else "active"
        role = " (organizer)" if link.organizer else ""
        ctx.obj.console.print(f"{link.name}{role}: link made {link.created_at:%Y-%m-%d %H:%M}, {state}")


@teachers_app.command("revoke")
def teachers_revoke(ctx: typer.Context, name: str = typer.Argument(..., help="The teacher's rater name.")) -> None:
    """Revoke a teacher's link: it opens nothing from now on (their ratings stay)."""
    with session_scope(ctx.obj.engine) as session:
        revoke_teacher(session, name=name)
    ctx.obj.console.print(f"{name}'s link is revoked.")
