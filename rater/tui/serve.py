"""The rating screen in a web browser (`rater serve`), built on textual-serve: every browser session gets its own
screen process (`rater rate` or `rater eval rate`) on the shared database, under the name its token belongs to.

A teacher's personal link is /t/TOKEN: the server checks the token's hash in the database, sets it as an
HttpOnly, SameSite=Strict cookie and redirects to the screen. The page and its websocket check the cookie again;
without a valid token a request gets a plain "not allowed" page and no screen process is started. An open screen
checks its link every few seconds, so revoking a link also closes a screen that is open (its saved ratings stay).
Tokens never appear in the server's output: the access log is off."""

import asyncio
import logging
import shlex
import sys
from collections.abc import Sequence

from aiohttp import web
from sqlalchemy import Engine
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from rater.store.access import teacher_for_token
from rater.store.engine import session_scope

COOKIE = "rater_token"
NOT_ALLOWED = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>rater: not allowed</title></head>
<body style="font-family: sans-serif; margin: 4em;">
<h1>Not allowed</h1>
<p>This page needs a teacher's personal link. Ask the person who runs the study for yours
(<code>rater teachers add NAME</code>).</p>
</body></html>
"""
log = logging.getLogger("rater.serve")


class RatingServer(Server):
    """textual-serve's server with per-teacher access: the token decides who rates."""

    def __init__(self, engine: Engine, screen_args: Sequence[str], *, host: str = "127.0.0.1", port: int = 8000,
                 public_url: str | None = None, recheck_s: float = 10.0) -> None:
        super().__init__("rater", host=host, port=port, title="rater", public_url=public_url)
        self.engine = engine
        self.recheck_s = recheck_s
        self.screen_args = list(screen_args)
        self.screens_started = 0

    def screen_command(self, teacher: str) -> str:
        """The screen process of one browser session: the CLI's own rating command, as this teacher."""
        args = [sys.executable, "-m", "rater.cli", *self.screen_args, "--as", teacher]
        return " ".join(shlex.quote(a) for a in args)

    async def teacher(self, token: str | None) -> str | None:
        def look_up() -> str | None:
            with session_scope(self.engine) as session:
                return teacher_for_token(session, token)
        return await asyncio.to_thread(look_up)

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.router.add_get("/t/{token}", self.handle_link, name="link")
        return app

    async def on_startup(self, app: web.Application) -> None:
        """Nothing printed here: `rater serve` prints its own lines."""

    def _not_allowed(self) -> web.Response:
        return web.Response(status=403, text=NOT_ALLOWED, content_type="text/html")

    async def handle_link(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if await self.teacher(token) is None:
            return self._not_allowed()
        response = web.HTTPFound("/")
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                            secure=self.public_url.startswith("https"))
        return response

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        if await self.teacher(request.cookies.get(COOKIE)) is None:
            return self._not_allowed()
        return await Server.handle_index(self, request)

    async def watch_link(self, token: str, teacher: str, websocket: web.WebSocketResponse) -> None:
        """Close the session once its link is revoked (checked every `recheck_s` seconds)."""
        while not websocket.closed:
            await asyncio.sleep(self.recheck_s)
            if await self.teacher(token) != teacher:
                log.info("a link of %s was revoked: its open screen is closed", teacher)
                await websocket.close(code=4403, message=b"link revoked")
                return

    async def handle_websocket(self, request: web.Request) -> web.StreamResponse:  # type: ignore[override]
        # (textual-serve's handler always upgrades; this one answers a request without a valid token with a page)
        token = request.cookies.get(COOKIE)
        teacher = await self.teacher(token)
        if teacher is None or token is None:
            return self._not_allowed()
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        service: AppService | None = None
        watch: asyncio.Task | None = None
        try:
            await websocket.prepare(request)
            watch = asyncio.create_task(self.watch_link(token, teacher, websocket))
            async def close() -> None:
                await websocket.close()

            service = AppService(self.screen_command(teacher), write_bytes=websocket.send_bytes,
                                 write_str=websocket.send_str, close=close,
                                 download_manager=self.download_manager, debug=self.debug)
            self.screens_started += 1
            log.info("screen %d opened for %s", self.screens_started, teacher)
            await service.start(width, height)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception:  # noqa: BLE001 - one broken session must not stop the server
            log.exception("a screen session failed")
        finally:
            if watch is not None:
                watch.cancel()
            if service is not None:
                await service.stop()
        return websocket

    def serve(self, debug: bool = False) -> None:
        """Run until Ctrl-C; like textual-serve's, but without the access log (it would print tokens)."""
        self.debug = debug
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
        logging.getLogger("aiohttp.access").disabled = True
        web.run_app(self._make_app(), host=self.host, port=self.port, access_log=None, print=lambda *_: None)
