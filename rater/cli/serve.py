"""`rater serve`: the rating screen in teachers' browsers."""

import errno
import ipaddress
import os
import socket
from typing import List, Optional

import typer

from rater.cli import app
from rater.cli.rate import OVERLAP_HELP, run_overlap
from rater.core.errors import InputError
from rater.store.access import list_teachers
from rater.store.engine import session_scope


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
        fix_for = fix.get(error.errno or 0, "pass another --host or --port")
        raise InputError(f"Cannot listen on {host}:{port}: {reason}.", fix_for)


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
    overlap = run_overlap(ctx.obj.engine, overlap, set_name)  # sets the study's K when asked; screens read it live
    extra: list[str] = []
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
