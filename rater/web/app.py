"""`rater serve`: the rating page, one async process for every teacher (Starlette on uvicorn, Jinja2 pages, one
small script of our own; every asset ships in the wheel).

A teacher's personal link is /t/TOKEN: the token's hash is looked up in the database (revocation counts from the
next request), the token becomes an HttpOnly, SameSite=Strict cookie (Secure behind https), and the page opens
at /rate, so the token never stays in the address bar or a Referer. Every request that changes something is a
POST whose `Origin` must be this server's and which carries a CSRF token derived from the teacher's token; pages
forbid framing and load nothing from another host (Content-Security-Policy). Requests per link are capped. A
database that cannot be reached gives a 503 page in the teacher's language, and the next request after it is back
works (every engine pings its pooled connections).
"""

import asyncio
import csv
import hashlib
import hmac
import io
import json
import logging
import secrets
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, Callable, MutableMapping
from urllib.parse import parse_qsl, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from markdown_it import MarkdownIt
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.datastructures import MultiDict
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from rater.core.domain import Reason
from rater.core.errors import StoreError
from rater.core.evidence import excerpt, segments
from rater.core.paths import instructions_text
from rater.core.texts import LANGUAGES, REASON_LABELS, TICK_MEANING, Texts
from rater.evaluation.agreement import wilson
from rater.evaluation.status import FAST, StudyStatus, study_status
from rater.raters.agenda import Queue
from rater.store.access import teacher_for_token
from rater.store.engine import in_thread, read_scope, session_scope
from rater.store.flags import flag_item
from rater.store.ratings import eval_set_id_of, rater_history
from rater.store.study import LOOK_AGAIN_SECONDS, Study
from rater.web.sessions import REASONS, Answer, Marks, Sessions, TeacherSession

COOKIE, LANG_COOKIE = "rater_token", "rater_lang"
MAX_FORM = 64 * 1024  # bytes of a posted answer or draft
KNOWN_FOR = 2.0  # seconds a valid link's name is kept for pages that only show (the page after an answer uses the
# answer's lookup); every write looks the link up, so a revoked link writes nothing from the next request on
DRAFT_WAIT = 5.0  # seconds a draft's request waits for its write (the database locked or away: the page retries)
WORKERS = 24  # threads for store calls (asyncio's default of cores + 4 queues a school's teachers behind 6)
STATIC = {"rater.css": "text/css; charset=utf-8", "rater.js": "text/javascript; charset=utf-8"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")
HEADERS = {"content-security-policy": CSP, "x-frame-options": "DENY", "x-content-type-options": "nosniff",
           "referrer-policy": "same-origin", "cache-control": "no-store"}
log = logging.getLogger("rater.web")

STUDY_TEXTS: dict[str, dict[str, str]] = {  # the organizer's page (/study)
    "st_preference": {"sv": "Preferensbedömning", "en": "Preference rating"},
    "st_eval_set": {"sv": "Utvärderingsomgång {name}", "en": "Evaluation set {name}"},
    "st_overlap": {"sv": "överlapp {k}", "en": "overlap {k}"},
    "st_done": {"sv": "{done} av {items} objekt klara", "en": "{done} of {items} items done"},
    "st_lacking_k": {"sv": "{n} saknar {k} lärare", "en": "{n} lacking {k} teachers"},
    "st_lacking_one": {"sv": "{n} saknar en lärare", "en": "{n} lacking a teacher"},
    "st_beyond": {"sv": "{n} med en bedömning utöver K", "en": "{n} with a rating beyond K"},
    "st_auto": {"sv": "Uppdatera var 15:e sekund", "en": "Update every 15 s"},
    "st_splits": {"sv": "Objekt per del", "en": "Items per split"},
    "st_split": {"sv": "del", "en": "split"},
    "st_items": {"sv": "objekt", "en": "items"},
    "st_done_col": {"sv": "klara", "en": "done"},
    "st_plot": {"sv": "Andel distraktorer som lärarna godtog, per källa, med 95 % Wilson-intervall (n = lärarnas "
                      "bedömningar)",
                "en": "Share of distractors the teachers accepted, per source, with 95 % Wilson intervals "
                      "(n = teacher ratings)"},
    "st_plot_label": {"sv": "Godtagna per källa", "en": "Acceptance per source"},
    "st_teachers": {"sv": "Lärare", "en": "Teachers"},
    "st_teacher": {"sv": "lärare", "en": "teacher"},
    "st_median": {"sv": "median s/objekt", "en": "median s/item"},
    "st_accepted": {"sv": "godtagna", "en": "accepted"},
    "st_kappa": {"sv": "kappa mot andra (n)", "en": "kappa vs others (n)"},
    "st_flagged": {"sv": "flaggade", "en": "flagged"},
    "st_last": {"sv": "senast aktiv", "en": "last active"},
    "st_fast": {"sv": "snabb", "en": "fast"},
    "st_fast_rule": {"sv": "markerad snabb: mediantiden per objekt är under {pct} av medianen av de andra lärarnas "
                           "mediantider",
                     "en": "marked fast: median seconds per item below {pct} of the median of the other teachers' "
                           "medians"},
    "st_nobody": {"sv": "Ingen lärare har bedömt något än.", "en": "No teacher has rated anything yet."},
    "st_flags": {"sv": "Flaggade objekt", "en": "Flagged items"},
    "st_item": {"sv": "objekt {n}", "en": "item {n}"},
    "st_no_note": {"sv": "(ingen anteckning)", "en": "(no note)"},
    "st_left_out": {"sv": "utelämnas ur exporter", "en": "left out of exports"},
    "st_left_out_why": {"sv": "(flaggat av de flesta av sina lärare)", "en": "(flagged by most of its teachers)"},
    "st_none": {"sv": "Inga.", "en": "None."},
    "st_held": {"sv": "Öppna just nu", "en": "Held now"},
    "st_held_row": {"sv": "objekt {item}: {teacher} sedan {since}", "en": "item {item}: {teacher} since {since}"},
    "st_nobody_holds": {"sv": "Ingen har ett objekt öppet.", "en": "Nobody has an item open."},
}

WEB_TEXTS: dict[str, dict[str, str]] = {
    "draft_unsaved": {"sv": "Dina markeringar är inte sparade än: servern svarade inte. De skickas igen om en stund; "
                            "Spara skickar dem i alla fall.",
                      "en": "Your ticks are not kept yet: the server did not answer. They are sent again shortly; "
                            "Save sends them in any case."},
    "not_allowed": {"sv": "Inte tillåtet", "en": "Not allowed"},
    "not_allowed_body": {"sv": "Länken är ogiltig eller återkallad. Be den som leder studien om en ny länk.",
                         "en": "This link is not valid or has been revoked. Ask the study's organizer for a new one."},
    "unavailable": {"sv": "Databasen går inte att nå just nu", "en": "The database cannot be reached right now"},
    "unavailable_body": {"sv": "Inget du sparat har gått förlorat. Försök igen om en minut (ladda om sidan).",
                         "en": "Nothing you saved is lost. Try again in a minute (reload the page)."},
    "organizer_link": {"sv": "Det här är en länk för den som leder studien: den öppnar studiens översikt (/study), "
                             "inte bedömning.",
                       "en": "This is an organizer's link: it opens the study's overview (/study), not rating."},
    "teacher_link": {"sv": "Den här sidan är för den som leder studien. Din länk öppnar bedömningen (/rate).",
                     "en": "This page is for the study's organizer. Your link opens rating (/rate)."},
    "too_many": {"sv": "För många förfrågningar", "en": "Too many requests"},
    "too_many_body": {"sv": "Den här länken har gjort för många förfrågningar på kort tid. Vänta en minut och "
                            "ladda om sidan.",
                      "en": "This link has made too many requests in a short time. Wait a minute, then reload."},
    "refused": {"sv": "Förfrågan nekades", "en": "Request refused"},
    "refused_body": {"sv": "Förfrågan kom inte från den här sidan. Inget sparades.",
                     "en": "The request did not come from this page. Nothing was saved."},
    "ended": {"sv": "Sessionen är avslutad", "en": "Session ended"},
    "ended_body": {"sv": "Bedömningen avslutades ({reason}). Allt du sparat finns kvar.",
                   "en": "Rating ended ({reason}). Everything you saved is kept."},
    "opening": {"sv": "Öppnar bedömningen…", "en": "Opening the rating page…"},
    "outdated": {"sv": "Det svaret gällde ett objekt som redan var besvarat (i en annan flik, eller ett dubbeltryck), "
                       "så inget sparades från det. Här är objektet att bedöma nu.",
                 "en": "That answer was for an item already answered (in another tab, or by a double tap), so "
                       "nothing was saved from it. This is the item to rate now."},
    "loading": {"sv": "Hämtar nästa objekt…", "en": "Fetching the next item…"},
    "saving_slow": {"sv": "Sparar… databasen svarar långsamt; sidan försöker igen av sig själv.",
                    "en": "Saving… the database is slow to answer; this page tries again by itself."},
    "looks_again": {"sv": "Sidan tittar efter igen var {seconds}:e sekund: ett objekt som en annan lärare släpper "
                          "kommer hit.",
                    "en": "This page looks again every {seconds} seconds: an item another teacher lets go comes here."},
    "web_all_saved": {"sv": "Allt är sparat. Tillbaka går till din senaste bedömning; Historik visar alla.",
                      "en": "Every rating is saved. Back goes to your last rating; History shows them all."},
    "web_tick_unseen": {"sv": "Alternativ {number} syns inte än: det visas nu; läs det, tryck sedan igen.",
                        "en": "Option {number} was not in view yet: it is shown now; read it, then press again."},
    "web_not_seen": {"sv": "Alternativ {numbers} har inte visats än: rulla ned innan du sparar.",
                     "en": "Not shown yet: options {numbers}. Scroll down before saving.",
                     "en_one": "Not shown yet: option {numbers}. Scroll down before saving."},
    "revoked_page": {"sv": "Sessionen är avslutad: länken är återkallad. Be den som leder studien om en ny.",
                     "en": "Session ended: this link was revoked. Ask the study's organizer for a new one."},
    "flag_web": {"sv": "Är något fel med själva frågan (fel svar, stavfel)? Skriv gärna vad (valfritt).",
                 "en": "Is something wrong with the question itself (a wrong answer, a typo)? Say what (optional)."},
    "accepted_word": {"sv": "godtagna", "en": "accepted"},
    "skip_to_options": {"sv": "Till alternativen", "en": "Skip to the options"},
    "progress": {"sv": "{rated} bedömda den här gången · {n} kvar", "en": "{rated} rated this session · {n} left"},
    "progress_shared": {"sv": "{rated} bedömda den här gången · {n} objekt behöver fler bedömningar",
                        "en": "{rated} rated this session · {n} items still need ratings",
                        "en_one": "{rated} rated this session · 1 item still needs ratings"},
    "reason_for": {"sv": "Orsak (valfritt)", "en": "Reason (optional)"},
    "reason_none": {"sv": "Ingen", "en": "None"},
    "keys": {"sv": "Tangenter: 1–9 bockar, mellanslag sparar, Backsteg tillbaka, s hoppar över, ? hjälp, "
                   "h historik, f flagga frågan.",
             "en": "Keys: 1–9 tick, space saves, Backspace goes back, s skips, ? help, h history, f flag the "
                   "question."},
    "context_more": {"sv": "Visa hela texten", "en": "Show the whole text"},
    "skipped_left": {"sv": "Överhoppade två gånger", "en": "Skipped twice"},
    "history_open": {"sv": "Öppna för att ändra", "en": "Open to change"},
    "back_to_rating": {"sv": "Tillbaka till bedömningen", "en": "Back to rating"},
    "options": {"sv": "Distraktorer", "en": "Distractors"},
    "language": {"sv": "Språk", "en": "Language"},
}


class WebTexts(Texts):
    """The screens' catalog plus the page's own words."""

    def say(self, key: str, **values: object) -> str:
        if key in WEB_TEXTS:
            return self.fill(WEB_TEXTS[key], **values)
        if key in STUDY_TEXTS:
            return self.fill(STUDY_TEXTS[key], **values)
        return super().say(key, **values)


@dataclass
class WebConfig:
    engine: Engine
    queue: Queue = Queue()
    blind: bool = False
    public_url: str = "http://127.0.0.1:8000"
    idle: float = 120.0  # seconds without a request from a teacher's page before their held item goes back
    recheck: float = 10.0  # seconds between checks that open sessions' links are still valid
    requests_per_minute: int = 600
    language: str | None = None
    listen: tuple[str, ...] = ()  # the origins of the address the server listens on (reached without the proxy)
    notice: str | None = None  # a catalog key every page's progress line adds (the uncertain order fell back)
    clock: Callable[[], float] = time.monotonic
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @property
    def secure(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"


class Limiter:
    """At most `per_minute` requests in any minute, per link (its token's hash)."""

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self.per_minute, self.clock = per_minute, clock
        self.seen: dict[str, deque[float]] = defaultdict(deque)

    def allow(self, key: str) -> bool:
        now = self.clock()
        times = self.seen[key]
        while times and now - times[0] > 60:
            times.popleft()
        if len(times) >= self.per_minute:
            return False
        times.append(now)
        return True


class SecurityHeaders:
    """Every response forbids framing, sniffing, referrers and caching, and loads nothing from another host."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in HEADERS.items() if k.encode() not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


class RatingSite:
    """The routes, the teachers' sessions and the checks every request goes through."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.sessions = Sessions(config.engine, config.queue, idle=config.idle, clock=config.clock)
        self.limiter = Limiter(config.requests_per_minute, config.clock)
        self.templates = Environment(loader=PackageLoader("rater.web", "templates"),
                                     autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
        self.markdown = MarkdownIt("commonmark", {"html": False})
        self.ended: dict[str, str] = {}  # teachers whose sessions were closed (revoked), and why
        self.known: dict[tuple[str, bool], tuple[str, float]] = {}  # (token hash, organizer) -> (name, looked up at)
        self.watcher: asyncio.Task | None = None

    # the app --------------------------------------------------------------------------------------------------

    def app(self) -> Starlette:
        routes = [Route("/", self.index), Route("/t/{token}", self.link), Route("/rate", self.page),
                  Route("/rate", self.post_answer, methods=["POST"]), Route("/draft", self.post_draft, methods=["POST"]),
                  Route("/alive", self.post_alive, methods=["POST"]), Route("/flag", self.post_flag, methods=["POST"]), Route("/instructions", self.instructions),
                  Route("/history", self.history), Route("/static/{name}", self.static),
                  Route("/favicon.ico", self.no_icon), Route("/study", self.study_page),
                  Route("/study.json", self.study_json), Route("/study.csv", self.study_csv)]
        handlers = {SQLAlchemyError: self.unavailable, StoreError: self.unavailable}
        return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)],
                         exception_handlers=handlers, lifespan=self.lifespan)

    @asynccontextmanager
    async def lifespan(self, _app: Starlette):
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(WORKERS, thread_name_prefix="rater-store"))
        self.watcher = asyncio.create_task(self.watch())
        try:
            yield
        finally:
            self.watcher.cancel()
            await self.sessions.close()

    async def watch(self) -> None:
        """Stop idle sessions (their items go back to the others) and close sessions whose link was revoked."""
        while True:
            await asyncio.sleep(min(self.config.recheck, self.config.idle / 4))
            for name in self.sessions.idle_ones():
                self.sessions.end(name)
            try:
                names = list(self.sessions.by_name)
                valid = await in_thread(self._still_valid, names)
            except SQLAlchemyError as error:  # the database is away: the sessions keep going, and say so on save
                log.warning("cannot check the teachers' links: %s", type(error).__name__)
                continue
            for name in names:
                if name not in valid:
                    self.ended[name] = "revoked"
                    self.sessions.end(name)
                    self.known = {k: v for k, v in self.known.items() if v[0] != name}

    def _still_valid(self, names: list[str]) -> set[str]:
        from sqlmodel import col, select

        from rater.store.tables import RaterRecord, TeacherAccess
        if not names:
            return set()
        with session_scope(self.config.engine) as session:
            rows = session.execute(select(col(RaterRecord.name)).join(
                TeacherAccess, col(TeacherAccess.rater_id) == col(RaterRecord.id)).where(
                col(RaterRecord.name).in_(names), col(TeacherAccess.revoked_at).is_(None))).scalars()
            return set(rows)

    # checks ---------------------------------------------------------------------------------------------------

    def texts(self, request: Request) -> WebTexts:
        asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
        if asked in LANGUAGES:
            return WebTexts(asked)
        if self.config.language in LANGUAGES:
            return WebTexts(self.config.language)
        accept = request.headers.get("accept-language", "").lower()
        return WebTexts("sv" if accept.startswith("sv") else "en")

    async def teacher(self, token: str | None, organizer: bool = False, fresh: bool = False) -> str | None:
        """The name behind a valid link (None for any other token). A name found is kept for KNOWN_FOR seconds
        for pages that only show (`fresh` looks it up all the same: every request that writes does); a token
        found invalid is looked up again every time."""
        if not token:
            return None
        key = (hashlib.sha256(token.encode()).hexdigest(), organizer)
        known = self.known.get(key)
        now = self.config.clock()
        if not fresh and known is not None and now - known[1] < min(KNOWN_FOR, self.config.recheck):
            return known[0]

        def look_up() -> str | None:
            with read_scope(self.config.engine) as session:
                return teacher_for_token(session, token, organizer=organizer)
        name = await in_thread(look_up)
        if name is None:
            self.known.pop(key, None)
            return None
        if len(self.known) >= 10_000:  # only valid links are kept, each for a moment: drop the old ones
            self.known = {k: v for k, v in self.known.items() if now - v[1] < KNOWN_FOR}
        self.known[key] = (name, now)
        return name

    def csrf(self, token: str) -> str:
        return hmac.new(self.config.secret, token.encode(), hashlib.sha256).hexdigest()[:40]

    def same_origin(self, request: Request) -> bool:
        origin = request.headers.get("origin")
        return bool(origin) and origin in (self.config.origin, *self.config.listen)

    async def authorized(self, request: Request, *, writing: bool) -> tuple[str, str] | Response:
        """(teacher, token), or the page that says why not. A writing request must come from this site's page."""
        if writing and not self.same_origin(request):
            return self.message(request, "refused", "refused_body", 403)
        token = request.cookies.get(COOKIE)
        name = await self.teacher(token, fresh=writing)  # a write is checked against the database itself
        if name is None or token is None:
            if await self.teacher(token, organizer=True) is not None:  # a valid link, for another page
                return self.message(request, "not_allowed", "organizer_link", 403)
            return self.message(request, "not_allowed", "not_allowed_body", 403)
        if not self.limiter.allow(hashlib.sha256(token.encode()).hexdigest()):
            return self.message(request, "too_many", "too_many_body", 429)
        return name, token

    # pages ----------------------------------------------------------------------------------------------------

    def render(self, request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        texts = self.texts(request)
        html = self.templates.get_template(template).render(say=texts.say, lang=texts.language, **values)
        response = HTMLResponse(html, status_code=status)
        if request.query_params.get("lang") in LANGUAGES:
            response.set_cookie(LANG_COOKIE, texts.language, httponly=True, samesite="strict",
                                secure=self.config.secure, max_age=365 * 86400)
        return response

    def message(self, request: Request, title: str, body: str, status: int, **values: Any) -> HTMLResponse:
        texts = self.texts(request)
        return self.render(request, "message.html", status, title=texts.say(title),
                           body=texts.say(body, **values))

    async def unavailable(self, request: Request, _error: Exception) -> Response:
        log.warning("the database could not be reached: %s", type(_error).__name__)
        return self.message(request, "unavailable", "unavailable_body", 503)

    async def index(self, request: Request) -> Response:
        if await self.teacher(request.cookies.get(COOKIE)) is None:
            return self.message(request, "not_allowed", "not_allowed_body", 403)
        return RedirectResponse("/rate", status_code=303)

    async def link(self, request: Request) -> Response:
        token = request.path_params["token"]
        page = "/rate" if await self.teacher(token) is not None else (
            "/study" if await self.teacher(token, organizer=True) is not None else None)
        if page is None:
            return self.message(request, "not_allowed", "not_allowed_body", 403)
        # a page of our own that moves on: the next request is then same-site, so the Strict cookie goes with it
        # even when the link was opened from a mail program or another site
        response = self.render(request, "opening.html", refresh=f"0; url={page}", next_page=page)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=self.config.secure, path="/")
        response.headers["referrer-policy"] = "no-referrer"  # the next request must not carry this URL as Referer
        return response

    async def no_icon(self, _request: Request) -> Response:
        return Response(status_code=204)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("Not found", status_code=404, media_type="text/plain")
        body = (files("rater.web") / "static" / name).read_bytes()
        return Response(body, media_type=STATIC[name], headers={"cache-control": "no-cache"})

    async def page(self, request: Request) -> Response:
        allowed = await self.authorized(request, writing=False)
        if isinstance(allowed, Response):
            return allowed
        name, token = allowed
        if name in self.ended and name not in self.sessions.by_name:
            del self.ended[name]  # a link valid again (re-added): a new session
        session = self.sessions.get(name)
        if session.state == "loading":
            await session.wait_for_change(session.seq, "loading", 15)
        looked = session.looked
        if session.look_again():  # nothing was left, work is shared out: an item may have come free since
            await session.wait_for_change(session.seq, "done", 5, looked)
            if session.state == "done":  # the study may be done: then there is nothing to look for
                session.lacking = await in_thread(self._lacking)
        return self.rating_page(request, session, token)

    def _lacking(self) -> int | None:
        queue = self.config.queue
        with read_scope(self.config.engine) as session:
            return Study.named(session, queue.eval_set, queue.where).lacking(session)

    def rating_page(self, request: Request, session: TeacherSession, token: str) -> Response:
        texts = self.texts(request)
        notices = [(kind, texts.say(text) if text in WEB_TEXTS or _in_catalog(text) else text)
                   for kind, text in session.take_notices()]
        common: dict[str, Any] = dict(name=session.name, csrf=self.csrf(token), seq=session.seq, notices=notices,
                      tick_meaning=TICK_MEANING, progress=self.progress(session, texts), blind=self.config.blind,
                      alive=max(1.0, min(30.0, self.config.idle / 4)))
        if session.state == "item" and session.item is not None:
            return self.render(request, "rate.html", item=self.item_values(session, texts), **common)
        if session.state == "done":
            left = [{"id": i.id, "question": i.question} for i in session.left]
            done = texts.say("all_rated", total=session.start.total if session.start else 0)
            if session.left:
                before = session.start.total - session.start.pending if session.start else 0
                done = texts.say("rated_but_left", rated=before + session.rated, left=len(session.left))
            elif session.start is not None and session.start.overlap is not None:
                done = texts.say("study_done" if session.lacking == 0 else "nothing_left", n=session.start.overlap)
            if session.start is not None and session.start.overlap is not None and session.lacking != 0:
                # each load looks again (page)
                return self.render(request, "done.html", done=done, left=left, refresh=str(LOOK_AGAIN_SECONDS),
                                   looks_again=texts.say("looks_again", seconds=LOOK_AGAIN_SECONDS), **common)
            return self.render(request, "done.html", done=done, left=left, **common)
        if session.state in ("loading", "saving"):  # a save that waits for the database: the page asks again
            title = texts.say("loading" if session.state == "loading" else "saving_slow")
            return self.render(request, "message.html", 503, title=title, body="", refresh="2")
        if isinstance(session.error, SQLAlchemyError):  # said as the database being away; a reload starts anew
            return self.message(request, "unavailable", "unavailable_body", 503)
        reason = "revoked" if self.ended.get(session.name) == "revoked" else (
            getattr(session.error, "message", None) or type(session.error).__name__ if session.error else "stopped")
        return self.message(request, "ended", "ended_body", 410 if reason == "revoked" else 503, reason=reason)

    def progress(self, session: TeacherSession, texts: WebTexts) -> str:
        start = session.start
        if start is None:
            return ""
        left = max(0, start.pending - session.rated)
        key = "progress_shared" if start.overlap is not None else "progress"
        line = texts.say(key, rated=session.rated, n=left)
        if self.config.queue.uncertain:
            unjudged = session.item is not None and session.item.uncertainty is None
            line += " · " + texts.say("no_judge" if unjudged else "by_uncertainty")
        if self.config.notice:
            line += " · " + texts.say(self.config.notice)
        return line

    def item_values(self, session: TeacherSession, texts: WebTexts) -> dict[str, Any]:
        item = session.item
        assert item is not None
        options = [d.text for d in item.distractors]
        start, end = excerpt(item.context, item.answer)

        def marked(a: int, b: int | None) -> list[dict[str, Any]]:
            return [{"text": s.text, "answer": "answer" in s.labels,
                     "options": sorted(label for label in s.labels if label != "answer")}
                    for s in segments(item.context, item.answer, options, a, b)]
        new = item.new_distractors()
        rows = []
        for number, d in enumerate(item.distractors, 1):
            ticked, reason = session.marks.get(d.id, (False, None))
            known = reason in REASONS
            rows.append({"id": d.id, "number": number, "text": d.text, "ticked": ticked, "new": d.id in new,
                         "reason": reason if known else ("other" if reason else ""),
                         "other": reason if reason and not known else ""})
        reasons = [(r.value, REASON_LABELS[r.value][texts.language]) for r in Reason]
        return {"id": item.id, "question": item.question, "answer": item.answer, "options": rows,
                "excerpt": marked(start, end), "whole": marked(0, None) if (start, end) != (0, len(item.context))
                else None, "reasons": reasons, "earlier": item.earlier}

    # the organizer's view ----------------------------------------------------------------------------------------

    async def organizer_status(self, request: Request) -> StudyStatus | Response:
        """The study's status for an organizer's link; a teacher's link (or none) gets the "not allowed" page."""
        token = request.cookies.get(COOKIE)
        if await self.teacher(token, organizer=True) is None or token is None:
            if await self.teacher(token) is not None:  # a teacher's valid link: this page is not theirs
                return self.message(request, "not_allowed", "teacher_link", 403)
            return self.message(request, "not_allowed", "not_allowed_body", 403)
        if not self.limiter.allow(hashlib.sha256(token.encode()).hexdigest()):
            return self.message(request, "too_many", "too_many_body", 429)
        queue = self.config.queue

        def load() -> StudyStatus:
            with session_scope(self.config.engine) as session:
                eval_set_id = eval_set_id_of(session, queue.eval_set) if queue.eval_set else None
                scope = f"evaluation set {queue.eval_set}" if queue.eval_set else "preference rating"
                return study_status(session, eval_set_id=eval_set_id, where=queue.where, scope=scope)
        return await in_thread(load)

    async def study_page(self, request: Request) -> Response:
        status = await self.organizer_status(request)
        if isinstance(status, Response):
            return status
        bars = []
        for source, figures in status.by_source.items():
            rated, rate = int(figures["rated"] or 0), figures["accepted_rate"]
            if rated and rate is not None:
                low, high = wilson(round(float(rate) * rated), rated)
                bars.append({"source": source, "rate": float(rate), "low": low, "high": high, "n": rated})
        texts = self.texts(request)
        queue = self.config.queue
        scope = texts.say("st_eval_set", name=queue.eval_set) if queue.eval_set else texts.say("st_preference")
        return self.render(request, "study.html", study=status, bars=bars, scope=scope, fast_share=f"{FAST:.0%}")

    async def study_json(self, request: Request) -> Response:
        status = await self.organizer_status(request)
        if isinstance(status, Response):
            return status
        return JSONResponse(status.as_json(), headers={"content-disposition": 'attachment; filename="study.json"'})

    async def study_csv(self, request: Request) -> Response:
        status = await self.organizer_status(request)
        if isinstance(status, Response):
            return status
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["teacher", "items", "median_seconds", "accepted_rate", "kappa", "kappa_n", "flagged",
                         "last_active", "fast"])
        for name, t in status.teachers.items():
            writer.writerow([name, t.items, t.median_seconds, t.accepted_rate, t.kappa, t.kappa_n, t.flagged,
                             t.last_active, t.fast])
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": 'attachment; filename="study.csv"'})

    async def instructions(self, request: Request) -> Response:
        allowed = await self.authorized(request, writing=False)
        if isinstance(allowed, Response):
            return allowed
        document = instructions_text("evaluation.md" if self.config.blind else "rating.md")
        return self.render(request, "instructions.html", body=self.markdown.render(document))

    async def history(self, request: Request) -> Response:
        allowed = await self.authorized(request, writing=False)
        if isinstance(allowed, Response):
            return allowed
        name, token = allowed
        session = self.sessions.get(name)
        start = session.start
        text = request.query_params.get("q", "")[:200]

        def rows() -> list:
            if start is None:
                return []
            with session_scope(self.config.engine) as db:
                return rater_history(db, rater_id=start.rater_id, eval_set_id=start.eval_set_id, text=text)
        return self.render(request, "history.html", rows=await in_thread(rows), q=text,
                           csrf=self.csrf(token), seq=session.seq, name=name)

    # writes ---------------------------------------------------------------------------------------------------

    async def post_answer(self, request: Request) -> Response:
        allowed = await self.authorized(request, writing=True)
        if isinstance(allowed, Response):
            return allowed
        name, token = allowed
        body = await request.body()
        if len(body) > MAX_FORM:
            return self.message(request, "refused", "refused_body", 413)
        form = MultiDict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=2000))
        if not hmac.compare_digest(str(form.get("csrf", "")), self.csrf(token)):
            return self.message(request, "refused", "refused_body", 403)
        session = self.sessions.get(name)
        answer = parse_answer(form)
        if answer is None:
            return self.message(request, "refused", "refused_body", 400)
        refused = session.answer(answer)
        if refused is not None:
            session.notices.append(("warning", refused))
        else:  # the next item (or the same one again, with why) once the save is done; after 3 s "Saving…",
            await session.wait_for_change(session.seq, session.state, 3)  # a page that asks again by itself
        return RedirectResponse("/rate", status_code=303)

    async def post_flag(self, request: Request) -> Response:
        """Flag the item on the page as broken, with an optional note, for the organizer."""
        allowed = await self.authorized(request, writing=True)
        if isinstance(allowed, Response):
            return allowed
        name, token = allowed
        body = await request.body()
        form = MultiDict(parse_qsl(body[:MAX_FORM].decode("utf-8", "replace"), keep_blank_values=True))
        if not hmac.compare_digest(str(form.get("csrf", "")), self.csrf(token)):
            return self.message(request, "refused", "refused_body", 403)
        session = self.sessions.get(name)
        if str(form.get("seq", "")) != str(session.seq) or session.item is None or session.start is None:
            session.notices.append(("warning", "outdated"))
            return RedirectResponse("/rate", status_code=303)
        rater_id, item_id, note = session.start.rater_id, session.item.id, str(form.get("note", ""))

        def store() -> None:
            with session_scope(self.config.engine) as db:
                flag_item(db, rater_id=rater_id, item_id=item_id, note=note)
        await in_thread(store)
        session.notices.append(("note", "flagged"))
        return RedirectResponse("/rate", status_code=303)

    async def post_json(self, request: Request) -> tuple[TeacherSession, dict] | Response:
        allowed = await self.authorized(request, writing=True)
        if isinstance(allowed, Response):
            return allowed
        name, token = allowed
        if not hmac.compare_digest(request.headers.get("x-csrf-token", ""), self.csrf(token)):
            return JSONResponse({"error": "refused"}, status_code=403)
        try:
            raw = await request.body()
            if len(raw) > MAX_FORM:
                return JSONResponse({"error": "too large"}, status_code=413)
            body = json.loads(raw or b"{}")
        except ValueError:
            return JSONResponse({"error": "not JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "not an object"}, status_code=400)
        return self.sessions.get(name), body

    async def post_draft(self, request: Request) -> Response:
        got = await self.post_json(request)
        if isinstance(got, Response):
            return got
        session, body = got
        try:
            seq = int(body.get("seq", -1))
            ticked = {int(d) for d in body.get("ticked", [])}
            reasons = {int(d): str(r)[:500] for d, r in dict(body.get("reasons", {})).items() if r}
        except (TypeError, ValueError):
            return JSONResponse({"error": "bad draft"}, status_code=400)
        marks: Marks = {}
        if session.item is not None:
            for d in session.item.distractors:
                marks[d.id] = (d.id in ticked, None if d.id in ticked else reasons.get(d.id))
        if not session.draft(seq, marks):
            return Response(status_code=409)
        if session.draft_written is not None:  # said only once it is kept: else the page says so and sends it again
            try:
                await asyncio.wait_for(asyncio.shield(session.draft_written), DRAFT_WAIT)
            except (TimeoutError, SQLAlchemyError, StoreError) as error:
                log.warning("a draft was not kept: %s", type(error).__name__)
                return JSONResponse({"error": "not kept"}, status_code=503)
        return Response(status_code=204)

    async def post_alive(self, request: Request) -> Response:
        got = await self.post_json(request)
        if isinstance(got, Response):
            return got
        session, body = got
        return JSONResponse({"seq": session.seq, "state": session.state})


def _in_catalog(key: str) -> bool:
    from rater.core.texts import CATALOG
    return key in CATALOG


def parse_answer(form: Any) -> Answer | None:
    """The teacher's answer from the posted form; None when it is not one."""
    try:
        seq = int(str(form.get("seq", "")))
        action = str(form.get("action", "save"))
        item_id = None
        if action.startswith("open:"):
            action, item_id = "open", int(action.split(":", 1)[1])
        ticked = {int(str(v)) for v in form.getlist("tick")}
        seconds_text = str(form.get("seconds", "") or "")
        seconds = float(seconds_text) if seconds_text else None
    except ValueError:
        return None
    if action not in ("save", "skip", "back", "open"):
        return None
    reasons: dict[int, str] = {}
    for key, value in form.multi_items():
        if key.startswith("reason_") and key[7:].isdigit() and value:
            distractor = int(key[7:])
            chosen = str(value)
            if chosen == "other":
                chosen = str(form.get(f"other_{distractor}", "")).strip()[:500]
            elif chosen not in REASONS:
                continue
            if chosen:
                reasons[distractor] = chosen
    return Answer(action, seq, ticked, reasons, seconds, item_id)


def create_app(config: WebConfig) -> Starlette:
    return RatingSite(config).app()
