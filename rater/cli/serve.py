"""`rater serve`: the rating page in teachers' browsers, one async process for every teacher."""

import errno
import ipaddress
import os
import socket
from typing import List, Optional

import typer

from rater.cli import app
from rater.cli.rate import OVERLAP_HELP, order_by_uncertainty, run_overlap, something_to_rate
from rater.cli.teachers import check_http_url
from rater.core.errors import InputError
from rater.core.texts import LANGUAGES
from rater.store.access import list_teachers
from rater.store.engine import create_store_engine, session_scope
from rater.store.items import ItemFilter
from rater.store.ratings import eval_set_id_of


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen_origins(host: str, port: int) -> tuple[str, ...]:
    """The origins a page has when reached straight at the address the server listens on (without a proxy)."""
    if _loopback(host):
        names = ["127.0.0.1", "localhost", "[::1]"]
    elif host in ("0.0.0.0", "::"):
        names = [socket.gethostname(), socket.getfqdn()]
        try:
            found = {str(a[4][0]) for a in socket.getaddrinfo(socket.gethostname(), None)}
            names += [f"[{a}]" if ":" in a else a for a in sorted(found)]
        except OSError:
            pass
    else:
        names = [f"[{host}]" if ":" in host else host]
    return tuple(dict.fromkeys(f"http://{name}:{port}" for name in names))


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
          order: str = typer.Option("dataset", help="Preference rating: dataset (stored order) or uncertain (the "
                                                    "items the judges are least sure about first)."),
          public_url: Optional[str] = typer.Option(None, help="The address browsers use, if not http://HOST:PORT "
                                                              "(e.g. https://... behind a TLS proxy)."),
          lang: Optional[str] = typer.Option(None, help="The page's language when the browser does not ask for one: "
                                                        "sv or en (default: the browser's)."),
          idle: float = typer.Option(120.0, min=1.0, metavar="SECONDS",
                                     help="A page that has not been heard from for this long (closed, or its "
                                          "machine asleep) gives its item back to the other teachers."),
          recheck: float = typer.Option(10.0, min=0.1, metavar="SECONDS",
                                        help="How often open pages' links are checked; a revoked link closes its "
                                             "page."),
          requests_per_minute: int = typer.Option(600, min=10, help="Most requests one teacher's link may make in "
                                                                    "a minute (a page says so beyond it).")) -> None:
    """Serve the rating page to teachers' browsers; each teacher opens their personal link (`rater teachers add`)."""
    import uvicorn

    from rater.raters.agenda import Queue
    from rater.web.app import WORKERS, WebConfig, create_app

    if set_name and source:
        raise InputError("--set and --source do not go together: an evaluation set has its own distractors.",
                         "pass one of them")
    if lang is not None and lang not in LANGUAGES:
        raise InputError(f"There is no language {lang!r}.", f"pass --lang {' or '.join(LANGUAGES)}")
    url = check_http_url(public_url, "--public-url") if public_url else f"http://{host}:{port}"
    where = ItemFilter(sources=tuple(source), split=split)
    if set_name is None:
        with session_scope(ctx.obj.engine) as session:
            something_to_rate(session, where)
    overlap = run_overlap(ctx.obj.engine, overlap, set_name)  # sets the study's K when asked; sessions read it live
    _check_address(host, port)
    with session_scope(ctx.obj.engine) as session:
        links = [link for link in list_teachers(session) if link.revoked_at is None]
        active = [link.name for link in links if not link.organizer]
        organizers = [link.name for link in links if link.organizer]
        if set_name is not None:
            eval_set_id_of(session, set_name)  # an unknown set is an error before anything is served
    console = ctx.obj.console
    if not _loopback(host) and not url.startswith("https://"):
        console.print(f"[bold yellow]Warning:[/] listening on {host}: traffic (tokens and ratings) is not encrypted "
                      "unless a TLS proxy sits in front. Pass --public-url https://... for the links.")
    if order not in ("dataset", "uncertain"):
        raise InputError(f"Unknown order {order!r}.", "use dataset or uncertain")
    uncertain = order == "uncertain" and set_name is None and order_by_uncertainty(ctx.obj.engine, console)
    queue = Queue(eval_set=set_name) if set_name else Queue(where, uncertain=uncertain)
    # one process for every teacher: its store calls run in WORKERS threads, each with a connection of its own
    engine = create_store_engine(ctx.obj.url, upgrade=False, pool_size=WORKERS + 2)
    config = WebConfig(engine, queue, blind=set_name is not None, public_url=url, idle=idle,
                       recheck=recheck, requests_per_minute=requests_per_minute, language=lang,
                       notice="uncertain_none" if order == "uncertain" and set_name is None and not uncertain else None,
                       listen=_listen_origins(host, port))
    mode = f"blind evaluation of {set_name}" if set_name else "preference rating"
    console.print(f"Serving the rating page ({mode}{f', overlap {overlap}' if overlap else ''}) on {url}; "
                  "Ctrl-C stops.")
    console.print(f"Teachers with a link: {', '.join(active)}" if active else
                  "No teacher has a link yet: `rater teachers add NAME` makes one.")
    if organizers:
        console.print(f"Organizers (the study's status at /study): {', '.join(organizers)}")
    console.print(f"A new link: rater teachers add NAME --url {url}", highlight=False)
    # no access log: the personal links (/t/TOKEN) must never reach a log
    uvicorn.run(create_app(config), host=host, port=port, access_log=False, log_level="warning",
                server_header=False, date_header=False, lifespan="on", ws="none", timeout_keep_alive=65)
