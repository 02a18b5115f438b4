"""The rating screen in a real browser: headless Chromium (Debian's package, driven by Playwright through
executable_path) against `rater serve` in its own process, with teachers' personal links."""

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

CHROMIUM = os.environ.get("RATER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--no-first-run"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rater(db: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "rater.cli", "--db", str(db), *args], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def descendants(pid: int) -> list[str]:
    """Command lines of every process below `pid` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        for child in frontier:
            try:
                found.append((Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                pass
    return found


class Served:
    def __init__(self, db: Path, *args: str) -> None:
        self.db, self.port = db, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-m", "rater.cli", "--db", str(db), "serve", "--port",
                                         str(self.port), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, cwd=ROOT)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert self.process.poll() is None, self.process.stdout.read()
                assert time.monotonic() < deadline, "rater serve did not start listening"
                time.sleep(0.1)

    def link(self, name: str) -> str:
        return rater(self.db, "teachers", "add", name, "--url", self.url).strip().splitlines()[-1]

    def stop(self) -> str:
        self.process.terminate()
        out, _ = self.process.communicate(timeout=30)
        return out


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (`make test` installs Debian's chromium package where it can; "
                    "or set RATER_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def demo(tmp_path) -> Path:
    db = tmp_path / "school.db"
    rater(db, "demo")
    return db


@pytest.fixture
def served(demo):
    server = Served(demo)
    yield server
    server.stop()


class Screen:
    """One teacher's browser session: what the server sent to the terminal in the page, and the keyboard."""

    def __init__(self, browser, link: str) -> None:
        self.context = browser.new_context(viewport={"width": 1100, "height": 700})
        self.page = self.context.new_page()
        self.frames: list[str] = []
        self.page.on("websocket", lambda ws: ws.on("framereceived", self._frame))
        self.response = self.page.goto(link)

    def _frame(self, payload) -> None:
        self.frames.append(payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in "".join(self.frames):
            assert time.monotonic() < deadline, f"{text!r} never reached the browser"
            self.page.wait_for_timeout(50)

    def press(self, *keys: str) -> None:
        self.page.locator("canvas").last.click()
        for key in keys:
            self.page.keyboard.press(key)

    def close(self) -> None:
        self.context.close()


def ratings(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as connection:
        return dict(connection.execute("SELECT rater.name, count(*) FROM rating JOIN rater ON rater.id = "
                                       "rating.rater_id GROUP BY rater.name").fetchall())


def wait_for_ratings(db: Path, expected: dict[str, int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (found := ratings(db)) != expected:
        assert time.monotonic() < deadline, found
        time.sleep(0.1)


def first_question(db: Path) -> str:
    with sqlite3.connect(db) as connection:
        question = connection.execute("SELECT question FROM item ORDER BY id LIMIT 1").fetchone()[0]
    return max(question.split(), key=len)


def test_a_teachers_link_opens_the_screen_and_a_rating_lands_in_the_database(browser, served):
    screen = Screen(browser, served.link("anna"))
    try:
        screen.wait_for(first_question(served.db))
        screen.wait_for("anna")  # the status line: the token decided the rater name
        screen.press("1", "Space")
        wait_for_ratings(served.db, {"anna": 4})
        with sqlite3.connect(served.db) as connection:
            accepted = [a for (a,) in connection.execute("SELECT accepted FROM rating ORDER BY distractor_id")]
        assert accepted == [1, 0, 0, 0]
    finally:
        screen.close()


def test_an_invalid_token_gets_not_allowed_and_no_screen_process(browser, served):
    served.link("anna")
    for path in ("/t/not-a-token", "/"):
        screen = Screen(browser, served.url + path)
        try:
            assert screen.response.status == 403
            assert "Not allowed" in screen.page.inner_text("body")
        finally:
            screen.close()
    import urllib.error
    import urllib.request
    with pytest.raises(urllib.error.HTTPError) as refused:  # the websocket itself, without a cookie
        urllib.request.urlopen(urllib.request.Request(served.url + "/ws", headers={
            "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Cookie": "rater_token=forged"}))
    assert refused.value.code == 403
    assert not [c for c in descendants(served.process.pid) if "rater.cli" in c]
    assert ratings(served.db) == {}


def test_a_revoked_link_opens_nothing(browser, served):
    link = served.link("anna")
    rater(served.db, "teachers", "revoke", "anna")
    screen = Screen(browser, link)
    try:
        assert screen.response.status == 403
    finally:
        screen.close()
    assert "revoked" in rater(served.db, "teachers", "list")


def test_revoking_a_link_closes_a_screen_that_is_open(browser, demo):
    server = Served(demo, "--recheck", "0.5")
    screen = Screen(browser, server.link("anna"))
    try:
        screen.wait_for(first_question(demo))
        screen.press("1", "Space")
        wait_for_ratings(demo, {"anna": 4})
        assert [c for c in descendants(server.process.pid) if "rater.cli" in c and "--as anna" in c]
        rater(demo, "teachers", "revoke", "anna")
        deadline = time.monotonic() + 30
        while [c for c in descendants(server.process.pid) if "--as anna" in c]:
            assert time.monotonic() < deadline, "the revoked teacher's screen process is still running"
            time.sleep(0.1)
        screen.page.wait_for_selector("body.-closed", timeout=30_000)  # the page says "Session ended."
        assert screen.page.locator(".closed-dialog").inner_text().strip().startswith("Session ended")
        screen.page.keyboard.press("1")
        screen.page.keyboard.press("Space")
        screen.page.wait_for_timeout(500)
        assert ratings(demo) == {"anna": 4}  # the ratings saved before stay; nothing more lands
    finally:
        screen.close()
        server.stop()


def test_two_teachers_rate_at_once_and_nothing_is_lost(browser, served):
    screens = [Screen(browser, served.link(name)) for name in ("anna", "bo")]
    try:
        for screen in screens:
            screen.wait_for(first_question(served.db))
        for _ in range(3):  # interleaved: each teacher submits an item in turn
            for screen in screens:
                screen.press("1", "Space")
        wait_for_ratings(served.db, {"anna": 12, "bo": 12})
    finally:
        for screen in screens:
            screen.close()


def test_tokens_are_stored_only_as_hashes(demo):
    link = rater(demo, "teachers", "add", "anna").strip().splitlines()[-1]
    token = link.rsplit("/", 1)[1]
    assert len(token) >= 32 and token.encode() not in demo.read_bytes()
    with sqlite3.connect(demo) as connection:
        stored = connection.execute("SELECT token_sha256 FROM teacher_access").fetchone()[0]
    import hashlib
    assert stored == hashlib.sha256(token.encode()).hexdigest()


def test_another_address_than_loopback_warns_that_traffic_is_not_encrypted(demo):
    server = Served(demo, "--host", "0.0.0.0")
    output = server.stop()
    assert "not encrypted" in " ".join(output.split())
    assert "not encrypted" not in " ".join(Served(demo).stop().split())


def test_an_address_that_cannot_be_served_is_a_clear_error(demo):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        cases = {("--port", port): "another program listens on port",
                 ("--host", "192.0.2.1"): "not an address of this machine",  # TEST-NET-1: never this machine's
                 ("--host", "no-such-host.invalid"): "no such host name"}
        for args, message in cases.items():
            result = subprocess.run([sys.executable, "-m", "rater.cli", "--db", str(demo), "serve", *args],
                                    capture_output=True, text=True, cwd=ROOT, timeout=60)
            output = " ".join((result.stdout + result.stderr).split())
            assert result.returncode == 2 and message in output and "Traceback" not in output, output
            assert "Serving" not in output


def test_served_screens_share_the_work_out_with_an_overlap(browser, demo):
    server = Served(demo, "--overlap", "1")
    screens = []
    try:
        screens.append(Screen(browser, server.link("anna")))
        screens[0].wait_for(first_question(demo))  # anna holds the first item
        screens.append(Screen(browser, server.link("bo")))
        screens[1].wait_for("the study needs")
        for screen in screens:
            screen.press("1", "Space")
        wait_for_ratings(demo, {"anna": 4, "bo": 4})
    finally:
        for screen in screens:
            screen.close()
        server.stop()
    with sqlite3.connect(demo) as connection:
        items = connection.execute("SELECT rater.name, rating.item_id FROM rating JOIN rater ON rater.id = "
                                   "rating.rater_id GROUP BY rater.name, rating.item_id").fetchall()
    assert len({item for _, item in items}) == 2  # each teacher got an item of their own
