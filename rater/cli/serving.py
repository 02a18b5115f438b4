"""Teachers without a terminal: `rater serve` puts the rating screen in their browsers, and `rater teachers`
hands out (and revokes) their personal links."""

import errno
import ipaddress
import os
import socket
from typing import List, Optional

import typer

from rater.cli import app
from rater.cli.teacher import OVERLAP_HELP, run_overlap
from rater.core.errors import InputError
from rater.store.access import add_teacher, list_teachers, revoke_teacher
from rater.store.engine import session_scope

teachers_app = typer.Typer(help="Teachers' personal links for the browser screen: add, list, revoke.")
app.add_typer(teachers_app, name="teachers")
DEFAULT_URL = "http://127.0.0.1:8000"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_address(host: str, port: int) -> None:
    """Refuse an address this machine cannot listen on before anything is served, with the reason."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:  # a name that does not resolve comes as an OSError with getaddrinfo's code
        unknown_name = isinstance(error, socket.gaierror) or error.errno in {
            socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
        if unknown_name:
            raise InputError(f"Cannot listen on {host}:{port}: there is no such host name.",
                             "pass --host with this machine's address (127.0.0.1, or 0.0.0.0 for every address)")
        fix = {errno.EADDRINUSE: f"another program listens on port {port}: pass another --port",
               errno.EACCES: f"port {port} needs administrator rights: pass --port 1024 or above",
               errno.EADDRNOTAVAIL: f"{host} is not an address of this machine: pass --host 127.0.0.1 (or 0.0.0.0)"}
        reason = os.strerror(error.errno) if error.errno and error.errno > 0 else str(error)
        raise InputError(f"Cannot listen on {host}:{port}: {reason}.", fix.get(error.errno, "pass another --host or --port"))


@teachers_app.command("add")
def teachers_add(ctx: typer.Context, name: str = typer.Argument(..., help="The teacher's rater name."),
                 url: str = typer.Option(DEFAULT_URL, help="The address teachers reach `rater serve` at.")) -> None:
    """Give a teacher a personal link (shown once; only a hash of its secret is stored)."""
    with session_scope(ctx.obj.engine) as session:
        token = add_teacher(session, name=name)
    ctx.obj.console.print(f"Personal link for [b]{name}[/b] (send it to them only; it is shown once):")
    ctx.obj.console.print(f"{url.rstrip('/')}/t/{token}", soft_wrap=True, highlight=False)


@teachers_app.command("list")
def teachers_list(ctx: typer.Context) -> None:
    """Teachers with links, and whether each link is active."""
    with session_scope(ctx.obj.engine) as session:
        links = list_teachers(session)
    if not links:
        ctx.obj.console.print("No links yet: `rater teachers add NAME` makes one.")
    for link in links:
        state = f"revoked {link.revoked_at:%Y-%m-%d %H:%M}" if link.revoked_at else "active"
        ctx.obj.console.print(f"{link.name}: link made {link.created_at:%Y-%m-%d %H:%M}, {state}")


@teachers_app.command("revoke")
def teachers_revoke(ctx: typer.Context, name: str = typer.Argument(..., help="The teacher's rater name.")) -> None:
    """Revoke a teacher's link: it opens nothing from now on (their ratings stay)."""
    with session_scope(ctx.obj.engine) as session:
        revoke_teacher(session, name=name)
    ctx.obj.console.print(f"{name}'s link is revoked.")


@app.command()
def serve(ctx: typer.Context,
          host: str = typer.Option("127.0.0.1", help="Address to listen on (another than loopback: put a TLS proxy "
                                                      "in front)."),
          port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
          set_name: Optional[str] = typer.Option(None, "--set", help="Serve blind evaluation of this set."),
          source: List[str] = typer.Option([], help="Preference rating: only distractors from these sources."),
          split: str = typer.Option("all", help="Preference rating: train, dev, test or all."),
          overlap: Optional[int] = typer.Option(None, metavar="K", help=OVERLAP_HELP),
          public_url: Optional[str] = typer.Option(None, help="The address browsers use, if not http://HOST:PORT "
                                                              "(e.g. behind a TLS proxy)."),
          recheck: float = typer.Option(10.0, min=0.1, metavar="SECONDS",
                                        help="How often an open screen checks that its link is still active; a "
                                             "revoked link closes the screen.")) -> None:
    """Serve the rating screen to teachers' browsers; each teacher opens their personal link."""
    from rater.tui.serve import RatingServer

    if set_name and source:
        raise InputError("--set and --source do not go together: an evaluation set has its own distractors.",
                         "pass one of them")
    overlap = run_overlap(ctx.obj.engine, overlap, set_name)
    extra = ["--overlap", str(overlap)] if overlap is not None else []
    if set_name:
        screen = ["eval", "rate", set_name, *extra]
    else:
        screen = ["rate", *[a for s in source for a in ("--source", s)], "--split", split, *extra]
    _check_address(host, port)
    with session_scope(ctx.obj.engine) as session:
        active = [link.name for link in list_teachers(session) if link.revoked_at is None]
    console = ctx.obj.console
    if not _loopback(host):
        console.print(f"[bold yellow]Warning:[/] listening on {host}: traffic (tokens and ratings) is not encrypted "
                      "unless a TLS proxy sits in front. Pass --public-url https://... for the links.")
    os.environ["RATER_DB"] = ctx.obj.url  # the screen processes open the same database (the environment, not argv)
    server = RatingServer(ctx.obj.engine, screen, host=host, port=port, public_url=public_url,
                          recheck_s=recheck)
    mode = f"blind evaluation of {set_name}" if set_name else "preference rating"
    console.print(f"Serving the rating screen ({mode}{f', overlap {overlap}' if overlap else ''}) on "
                  f"{server.public_url}; Ctrl-C stops.")
    console.print(f"Teachers with a link: {', '.join(active)}" if active else
                  "No teacher has a link yet: `rater teachers add NAME` makes one.")
    server.serve()
