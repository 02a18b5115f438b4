"""The rating page in a real browser: headless Chromium (Debian's package, driven by Playwright through
executable_path) against `rater serve` in its own process, with teachers' personal links: a phone with touch, a
tablet, a desktop with keys, two tabs, reloads, revocation, attacks from another origin, framing, accessibility
(axe-core), a browser killed mid-item and a database that goes down and comes back."""

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import ROOT

AXE = Path(os.environ.get("RATER_AXE", ROOT / ".venv" / "axe" / "node_modules" / "axe-core" / "axe.min.js"))
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
    """`rater serve` in its own process on a free port; `output` is everything it printed (read after stop)."""

    def __init__(self, db: Path | str, *args: str) -> None:
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
def playwright():
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (`make test` installs Debian's chromium package where it can; "
                    "or set RATER_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright):
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
    server = Served(demo, "--idle", "8")
    yield server
    server.stop()


PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 3}
TABLET = {"viewport": {"width": 820, "height": 1180}, "has_touch": True, "is_mobile": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}


class Page:
    """One teacher's browser tab, with every request it made."""

    def __init__(self, browser, link: str, device: dict | None = None, context=None) -> None:
        self.context = context or browser.new_context(**(device or DESKTOP))
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.goto(link)

    def ready(self) -> "Page":
        """Wait for the item and past the page's half-second rule."""
        self.page.wait_for_selector(".option")
        self.page.wait_for_timeout(700)
        return self

    def question(self) -> str:
        return self.page.inner_text("h1.question")

    def close(self) -> None:
        self.context.close()


def ratings(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as connection:
        return dict(connection.execute("SELECT rater.name, count(*) FROM rating JOIN rater ON rater.id = "
                                       "rating.rater_id GROUP BY rater.name").fetchall())


def rows(db: Path, name: str) -> list[tuple]:
    """A teacher's ratings: (item, question, accepted, shown position), in the order shown."""
    with sqlite3.connect(db) as connection:
        return connection.execute(
            "SELECT rating.item_id, item.question, rating.accepted, rating.shown_position FROM rating JOIN rater "
            "ON rater.id = rating.rater_id JOIN item ON item.id = rating.item_id WHERE rater.name = ? "
            "ORDER BY rating.item_id, rating.shown_position", (name,)).fetchall()


def wait_for_ratings(db: Path, expected: dict[str, int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (found := ratings(db)) != expected:
        assert time.monotonic() < deadline, found
        time.sleep(0.1)


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


# the teacher's page ---------------------------------------------------------------------------------------------

def test_a_phone_taps_an_option_and_save_and_the_rating_lands(browser, served):
    tab = Page(browser, served.link("anna"), PHONE).ready()
    try:
        question = tab.question()
        assert "Bocka godtagbara distraktorer / tick acceptable ones" in tab.page.inner_text("legend")
        assert no_horizontal_scroll(tab.page)
        for box in [tab.page.locator("label.tick").first, tab.page.locator("#save")]:
            size = box.bounding_box()
            assert size["height"] >= 44 and size["width"] >= 44, size  # touch targets
        tab.page.locator("label.tick").nth(1).tap()  # the whole row ticks
        assert tab.page.locator("input[name=tick]").nth(1).is_checked()
        tab.page.locator("#save").scroll_into_view_if_needed()
        tab.page.wait_for_timeout(300)
        tab.page.locator("#save").tap()
        wait_for_ratings(served.db, {"anna": 4})
        saved = rows(served.db, "anna")
        assert [r[1] for r in saved] == [question.split(":", 1)[1].strip()] * 4
        assert [(accepted, position) for _, _, accepted, position in saved] == [(0, 0), (1, 1), (0, 2), (0, 3)]
        tab.page.wait_for_selector(".option")
        assert tab.question() != question  # the next item
    finally:
        tab.close()


def test_a_desktop_rates_with_keys_and_no_click(browser, served):
    tab = Page(browser, served.link("anna")).ready()
    try:
        tab.page.keyboard.press("1")
        tab.page.keyboard.press("3")
        tab.page.keyboard.press("3")  # ticked and unticked again
        tab.page.keyboard.press("Space")
        wait_for_ratings(served.db, {"anna": 4})
        assert [(a, p) for _, _, a, p in rows(served.db, "anna")] == [(1, 0), (0, 1), (0, 2), (0, 3)]
        tab.page.wait_for_selector(".option")
        tab.page.wait_for_timeout(700)
        tab.page.keyboard.press("s")  # skip: nothing saved
        tab.page.wait_for_selector(".option")
        tab.page.wait_for_timeout(700)
        tab.page.keyboard.press("Backspace")  # back to the item rated first, with its saved tick
        tab.page.wait_for_function("document.querySelectorAll('input[name=tick]:checked').length === 1")
        assert tab.page.locator("input[name=tick]").first.is_checked()
        assert ratings(served.db) == {"anna": 4}
    finally:
        tab.close()


def test_a_tablet_gets_readable_type_and_no_sideways_scrolling(browser, served):
    tab = Page(browser, served.link("anna"), TABLET).ready()
    try:
        assert no_horizontal_scroll(tab.page)
        size = tab.page.evaluate("parseFloat(getComputedStyle(document.querySelector('.option .text')).fontSize)")
        assert size >= 16, size
        assert tab.page.locator("meta[name=viewport]").count() == 1
    finally:
        tab.close()


def test_a_double_tap_on_save_saves_one_item_not_two(browser, served):
    tab = Page(browser, served.link("anna")).ready()
    try:
        tab.page.keyboard.press("1")
        tab.page.keyboard.press("Space")
        tab.page.keyboard.press("Space")  # arrives while the next item is on its way, or within its half second
        tab.page.wait_for_selector(".option")
        tab.page.wait_for_timeout(1500)
        assert ratings(served.db) == {"anna": 4}
    finally:
        tab.close()


def test_an_answer_to_an_item_no_longer_shown_saves_nothing(browser, served):
    """Two tabs of one teacher show the same item (one claim); once one saves, the other's answer is refused."""
    context = browser.new_context(**DESKTOP)
    link = served.link("anna")
    first = Page(browser, link, context=context).ready()
    second = Page(browser, served.url + "/rate", context=context).ready()
    try:
        assert first.question() == second.question()
        first.page.keyboard.press("1")
        first.page.keyboard.press("Space")
        wait_for_ratings(served.db, {"anna": 4})
        second.page.locator("input[name=tick]").nth(2).check()
        second.page.locator("#save").click()
        second.page.wait_for_selector(".notice")
        assert "nothing was saved" in second.page.inner_text(".notices")
        assert ratings(served.db) == {"anna": 4}
        assert second.question() == first.page.inner_text("h1.question")  # both on the next item now
    finally:
        context.close()


def test_a_reload_keeps_the_ticks_not_yet_saved(browser, served):
    tab = Page(browser, served.link("anna")).ready()
    try:
        with tab.page.expect_response(lambda r: r.url.endswith("/draft") and r.status == 204):
            tab.page.locator("label.tick").nth(2).click()
        tab.page.reload()
        tab.page.wait_for_selector(".option")
        checked = tab.page.eval_on_selector_all("input[name=tick]", "boxes => boxes.map(b => b.checked)")
        assert checked == [False, False, True, False]
        assert ratings(served.db) == {}
    finally:
        tab.close()


def test_a_tick_followed_at_once_by_a_reload_is_kept(browser, served):
    """The reload's request can reach the server before the draft the page sent as it went: the tab keeps the
    ticks on their way and puts them back on the same item, and the save then stores them."""
    tab = Page(browser, served.link("anna")).ready()
    try:
        tab.page.locator("label.tick").nth(2).click()
        tab.page.locator(".option").nth(0).locator("details.reason summary").click()
        tab.page.locator(".option").nth(0).locator(".other-text input").type("för lätt")
        tab.page.reload()  # at once: the draft was still waiting
        tab.page.wait_for_selector(".option")
        checked = tab.page.eval_on_selector_all("input[name=tick]", "boxes => boxes.map(b => b.checked)")
        assert checked == [False, False, True, False]
        assert tab.page.locator(".other-text input").nth(0).input_value() == "för lätt"
        tab.page.wait_for_timeout(600)  # the half-second rule
        tab.page.locator("#save").click()
        wait_for_ratings(served.db, {"anna": 4})
        assert [accepted for *_, accepted, _ in rows(served.db, "anna")].count(1) == 1
        with sqlite3.connect(served.db) as connection:
            assert connection.execute("SELECT reason FROM rating WHERE shown_position = 0").fetchone() == ("för lätt",)
    finally:
        tab.close()


def test_a_reason_being_typed_is_kept_through_a_reload(browser, served):
    tab = Page(browser, served.link("anna"), PHONE).ready()
    try:
        tab.page.locator("details.reason summary").nth(1).tap()
        with tab.page.expect_response(lambda r: r.url.endswith("/draft") and r.status == 204):
            tab.page.locator(".other-text input").nth(1).type("för lätt")  # still in the field
        tab.page.reload()
        tab.page.wait_for_selector(".option")
        assert tab.page.locator(".other-text input").nth(1).input_value() == "för lätt"
        assert tab.page.locator(".option").nth(1).locator("input[value=other]").is_checked()
    finally:
        tab.close()


def test_a_save_that_waits_for_a_locked_database_says_so_and_lands_when_it_is_free(browser, served):
    tab = Page(browser, served.link("anna")).ready()
    question = tab.question()
    locker = sqlite3.connect(served.db, timeout=1, isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        tab.page.keyboard.press("1")
        tab.page.keyboard.press("Space")
        tab.page.wait_for_selector("text=Saving", timeout=30_000)
        locker.execute("COMMIT")
        tab.page.wait_for_selector(".option", timeout=60_000)  # the page asks again by itself
        assert tab.question() != question
        wait_for_ratings(served.db, {"anna": 4})
    finally:
        locker.close()
        tab.close()


def test_the_page_loads_nothing_from_another_host_and_passes_axe(browser, served):
    if not AXE.exists():
        pytest.skip(f"axe-core is not installed at {AXE} (`make test` installs it with npm; or set RATER_AXE)")
    link = served.link("anna")
    for device in (PHONE, DESKTOP):
        tab = Page(browser, link, device).ready()
        try:
            tab.page.locator("details.reason").first.locator("summary").click()  # the reasons too
            result = tab.page.evaluate(AXE.read_text() + "\n;axe.run(document).then(r => r.violations.map("
                                       "v => ({id: v.id, impact: v.impact, nodes: v.nodes.length})))")
            serious = [v for v in result if v["impact"] in ("serious", "critical")]
            assert not serious, serious
            assert all(url.startswith(served.url) for url in tab.requests), tab.requests
        finally:
            tab.close()


def test_the_instructions_and_history_open_from_the_page(browser, served):
    tab = Page(browser, served.link("anna")).ready()
    try:
        tab.page.keyboard.press("1")
        tab.page.keyboard.press("Space")
        wait_for_ratings(served.db, {"anna": 4})
        tab.page.wait_for_selector(".option")
        tab.page.keyboard.press("?")
        tab.page.wait_for_selector("article.instructions h2")
        assert "Svenska" in tab.page.inner_text("article.instructions")
        tab.page.goto(served.url + "/history")
        tab.page.locator("ul.history button").first.click()  # open the rated item to change it
        tab.page.wait_for_function("document.querySelectorAll('input[name=tick]:checked').length === 1")
    finally:
        tab.close()


def test_a_teacher_flags_a_broken_question_from_the_page(browser, served):
    tab = Page(browser, served.link("anna")).ready()
    try:
        question = tab.question().split(":", 1)[1].strip()
        tab.page.keyboard.press("1")  # a tick just before flagging (its draft not sent yet) is kept
        tab.page.keyboard.press("f")  # opens the flag box with its note field focused
        tab.page.keyboard.type("fel svar")
        tab.page.keyboard.press("Enter")
        tab.page.wait_for_selector(".notice")
        assert "flagged" in tab.page.inner_text(".notices")
        assert tab.page.locator("input[name=tick]").first.is_checked()
        with sqlite3.connect(served.db) as connection:
            assert connection.execute("SELECT item.question, flag.note FROM flag JOIN item ON item.id = flag.item_id"
                                      ).fetchall() == [(question, "fel svar")]
        assert ratings(served.db) == {}  # flagging rates nothing
    finally:
        tab.close()


def test_an_item_rated_before_a_restart_is_found_in_the_history_and_corrected(browser, demo):
    server = Served(demo)
    link = server.link("anna")
    tab = Page(browser, link).ready()
    first = tab.question().split(":", 1)[1].strip()
    tab.page.keyboard.press("1")
    tab.page.keyboard.press("Space")
    wait_for_ratings(demo, {"anna": 4})
    tab.close()
    old_url = server.url
    server.stop()
    server = Served(demo)  # a new day, a new server (on another port: the same token)
    try:
        tab = Page(browser, link.replace(old_url, server.url)).ready()
        tab.page.goto(server.url + "/history?q=" + urllib.parse.quote(first.split()[-1].rstrip("?")))
        assert tab.page.locator("ul.history li").count() == 1 and first in tab.page.inner_text("ul.history")
        tab.page.goto(server.url + "/history?q=no-such-words")
        assert tab.page.locator("ul.history li").count() == 0
        tab.page.goto(server.url + "/history")
        tab.page.locator("ul.history button").first.click()
        tab.page.wait_for_function("document.querySelectorAll('input[name=tick]:checked').length === 1")
        assert tab.question().split(":", 1)[1].strip() == first
        tab.page.wait_for_timeout(700)
        with tab.page.expect_navigation(url="**/rate", timeout=60_000):
            tab.page.keyboard.press("2")  # one more accepted; the first stays as it was
            tab.page.keyboard.press("Space")
        with sqlite3.connect(demo) as connection:
            revisions = connection.execute("SELECT revision, count(*) FROM rating GROUP BY revision").fetchall()
            history = connection.execute("SELECT count(*) FROM rating_history").fetchone()[0]
        assert revisions == [(1, 3), (2, 1)] and history == 1  # only the changed judgement
        tab.close()
    finally:
        server.stop()


def test_skipped_items_are_counted_and_listed_at_the_end_on_the_page(browser, tmp_path):
    db = tmp_path / "three.db"
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"context": "T.", "question": f"Fråga {n}?", "answer": f"s {n}",
                                         "distractors": [f"d {n}"]}) + "\n" for n in range(3)))
    rater(db, "import", str(items))
    server = Served(db)
    try:
        tab = Page(browser, server.link("anna")).ready()

        def answer(*keys: str) -> None:  # the keys, then wait for the page they lead to
            with tab.page.expect_navigation(url="**/rate", timeout=60_000):
                for key in keys:
                    tab.page.keyboard.press(key)
            tab.page.wait_for_timeout(700)

        answer("s")
        answer("s")
        answer("1", "Space")  # the third; then the two skipped come back once
        answer("s")
        answer("s")
        tab.page.wait_for_selector("ul.left")
        text = tab.page.inner_text("main")
        assert "2 you skipped twice are not rated yet" in text and "Fråga 0?" in text and "Fråga 1?" in text
        tab.page.locator("ul.left button").first.click()  # open one of them
        tab.page.wait_for_selector(".option")
        assert tab.question().endswith("Fråga 0?")
        tab.close()
    finally:
        server.stop()


def test_swedish_is_served_to_a_swedish_browser(browser, served):
    context = browser.new_context(locale="sv-SE", **DESKTOP)
    tab = Page(browser, served.link("anna"), context=context).ready()
    try:
        assert tab.page.inner_text("#save") == "Spara"
        assert tab.page.get_attribute("html", "lang") == "sv"
    finally:
        context.close()


def test_the_organizers_link_opens_the_study_page_and_teachers_links_do_not(browser, served):
    teacher = Page(browser, served.link("anna")).ready()
    teacher.page.keyboard.press("1")
    teacher.page.keyboard.press("Space")
    wait_for_ratings(served.db, {"anna": 4})
    teacher.page.goto(served.url + "/study")
    assert "This page is for the study's organizer" in teacher.page.inner_text("body")  # a teacher never sees it
    teacher.close()
    link = rater(served.db, "teachers", "add", "olle", "--organizer", "--url", served.url).strip().splitlines()[-1]
    assert "(organizer)" in rater(served.db, "teachers", "list")
    organizer = Page(browser, link)
    try:
        organizer.page.wait_for_selector("table.teachers")
        assert organizer.page.url.endswith("/study")
        text = organizer.page.inner_text("main")
        assert "1 of 12 items done" in text and "anna" in text
        assert organizer.page.locator("figure.plot svg rect").count() == 1  # acceptance per source
        data = organizer.page.evaluate("fetch('/study.json').then(r => r.json())")
        assert data["teachers"]["anna"]["items"] == 1 and data["done"] == 1
        csv_text = organizer.page.evaluate("fetch('/study.csv').then(r => r.text())")
        assert csv_text.splitlines()[1].startswith("anna,1,")
        organizer.page.goto(served.url + "/study?lang=sv")  # the organizer's page in Swedish too
        organizer.page.wait_for_selector("table.teachers")
        swedish = organizer.page.inner_text("main")
        assert "1 av 12 objekt klara" in swedish and "Preferensbedömning" in swedish and "Lärare" in swedish
        assert "items done" not in swedish and "Held now" not in swedish
        organizer.page.goto(served.url + "/study?lang=en")
        phone = Page(browser, link, PHONE)  # the organizer on a phone: wide tables scroll on their own, not the page
        try:
            phone.page.wait_for_selector("table.teachers")
            assert phone.page.evaluate("document.documentElement.scrollWidth <= innerWidth && "
                                       "document.querySelector('main').scrollWidth <= "
                                       "document.querySelector('main').clientWidth")
        finally:
            phone.close()
        organizer.page.goto(served.url + "/rate")
        assert "This is an organizer's link" in organizer.page.inner_text("body")  # an organizer's link rates nothing
        if AXE.exists():
            organizer.page.goto(served.url + "/study")
            organizer.page.wait_for_selector("table.teachers")
            result = organizer.page.evaluate(AXE.read_text() + "\n;axe.run(document).then(r => r.violations.map("
                                             "v => ({id: v.id, impact: v.impact})))")
            assert not [v for v in result if v["impact"] in ("serious", "critical")], result
    finally:
        organizer.close()
    assert ratings(served.db) == {"anna": 4}


# access and attacks ---------------------------------------------------------------------------------------------

def test_an_invalid_token_gets_not_allowed_and_no_session(browser, served):
    served.link("anna")
    for path in ("/t/not-a-token", "/", "/rate", "/history", "/instructions"):
        tab = Page(browser, served.url + path)
        try:
            assert "Not allowed" in tab.page.inner_text("body")
        finally:
            tab.close()
    assert urllib.request.urlopen(served.url + "/static/rater.css").status == 200
    for path in ("/static/", "/static/../app.py", "/static/sessions.py"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(served.url + path)
        assert refused.value.code in (403, 404)
    assert ratings(served.db) == {}


def test_a_revoked_link_opens_nothing(browser, served):
    link = served.link("anna")
    rater(served.db, "teachers", "revoke", "anna")
    tab = Page(browser, link)
    try:
        assert "Not allowed" in tab.page.inner_text("body")
    finally:
        tab.close()
    assert "revoked" in rater(served.db, "teachers", "list")


def test_revoking_a_link_closes_a_page_that_is_open(browser, demo):
    server = Served(demo, "--recheck", "0.5", "--idle", "4")
    tab = Page(browser, server.link("anna")).ready()
    try:
        tab.page.keyboard.press("1")
        tab.page.keyboard.press("Space")
        wait_for_ratings(demo, {"anna": 4})
        tab.page.wait_for_selector(".option")
        rater(demo, "teachers", "revoke", "anna")
        tab.page.wait_for_selector("body.-closed", timeout=30_000)  # the heartbeat hears it
        assert tab.page.locator(".closed-dialog").inner_text().strip().startswith("Session ended")
        tab.page.keyboard.press("1")
        tab.page.keyboard.press("Space")
        tab.page.wait_for_timeout(500)
        assert ratings(demo) == {"anna": 4}  # the ratings saved before stay; nothing more lands
    finally:
        tab.close()
        server.stop()


def cookie_and_csrf(browser, server: Served, name: str = "anna") -> tuple[str, str, int]:
    """What a teacher's page holds: the cookie, its CSRF token and the presentation it shows."""
    tab = Page(browser, server.link(name)).ready()
    cookie = next(c for c in tab.context.cookies() if c["name"] == "rater_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    csrf = tab.page.get_attribute("meta[name=csrf]", "content")
    seq = int(tab.page.get_attribute("body", "data-seq"))
    tab.close()
    return cookie["value"], csrf, seq


def post(url: str, data: bytes, headers: dict) -> int:
    try:
        return urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers, method="POST")).status
    except urllib.error.HTTPError as error:
        return error.code


def test_every_writing_request_from_another_origin_or_without_the_csrf_token_is_refused(browser, served):
    token, csrf, seq = cookie_and_csrf(browser, served)
    time.sleep(0.6)
    with sqlite3.connect(served.db) as connection:
        distractor = connection.execute("SELECT min(id) FROM distractor").fetchone()[0]
    form = urllib.parse.urlencode({"csrf": csrf, "seq": seq, "action": "save", "tick": distractor}).encode()
    draft = b'{"seq": %d, "ticked": [%d]}' % (seq, distractor)
    cookie = {"Cookie": f"rater_token={token}"}
    same = {"Origin": served.url}
    cases = [("/rate", form, {**cookie, "Origin": "http://127.0.0.1:9999"}),  # another port: same site, not origin
             ("/rate", form, {**cookie, "Origin": "http://evil.example"}),
             ("/rate", form, cookie),  # no Origin at all
             ("/rate", form.replace(csrf.encode(), b"0" * 40), {**cookie, **same}),
             ("/draft", draft, {**cookie, "Origin": "http://127.0.0.1:9999", "X-CSRF-Token": csrf}),
             ("/draft", draft, {**cookie, **same, "X-CSRF-Token": "forged"}),
             ("/alive", b"{}", {**cookie, "Origin": "http://127.0.0.1:9999", "X-CSRF-Token": csrf})]
    for path, body, headers in cases:
        content_type = "application/x-www-form-urlencoded" if path == "/rate" else "application/json"
        assert post(served.url + path, body, {**headers, "Content-Type": content_type}) in (400, 403), (path, headers)
    assert ratings(served.db) == {}
    with sqlite3.connect(served.db) as connection:
        assert connection.execute("SELECT count(*) FROM draft").fetchone()[0] == 0
    # the same request from the page's own origin with its token is a save: the checks are what refused them
    assert post(served.url + "/rate", form, {**cookie, **same,
                                             "Content-Type": "application/x-www-form-urlencoded"}) in (200, 303)
    wait_for_ratings(served.db, {"anna": 4})


def test_an_answer_posted_the_moment_after_a_revocation_saves_nothing(browser, served):
    """A page that only shows may use a name looked up a moment ago; an answer is checked against the database."""
    token, csrf, seq = cookie_and_csrf(browser, served)
    time.sleep(0.6)
    with sqlite3.connect(served.db) as connection:
        distractor = connection.execute("SELECT min(id) FROM distractor").fetchone()[0]
    headers = {"Cookie": f"rater_token={token}", "Origin": served.url}
    assert urllib.request.urlopen(urllib.request.Request(served.url + "/rate", headers=headers)).status == 200
    with sqlite3.connect(served.db) as connection:  # revoked at once, as `rater teachers revoke anna` does
        connection.execute("UPDATE teacher_access SET revoked_at = CURRENT_TIMESTAMP")
    form = urllib.parse.urlencode({"csrf": csrf, "seq": seq, "action": "save", "tick": distractor}).encode()
    assert post(served.url + "/rate", form, {**headers, "Content-Type": "application/x-www-form-urlencoded"}) == 403
    draft = b'{"seq": %d, "ticked": [%d]}' % (seq, distractor)
    assert post(served.url + "/draft", draft, {**headers, "X-CSRF-Token": csrf,
                                               "Content-Type": "application/json"}) == 403
    time.sleep(0.5)
    assert ratings(served.db) == {}
    with sqlite3.connect(served.db) as connection:
        assert connection.execute("SELECT count(*) FROM draft").fetchone()[0] == 0


def test_an_item_neither_rated_nor_skipped_cannot_be_opened_past_the_queue(browser, demo):
    """`open:ID` is for one's own history: an item another teacher holds (or one outside the queue) stays shut."""
    server = Served(demo, "--overlap", "1")
    try:
        bo = Page(browser, server.link("bo")).ready()
        held_by_bo = bo.question()
        token, csrf, seq = cookie_and_csrf(browser, server, "anna")
        with sqlite3.connect(demo) as connection:
            bos_item = connection.execute("SELECT item_id FROM lease JOIN rater ON rater.id = lease.rater_id "
                                          "WHERE rater.name = 'bo'").fetchone()[0]
        form = urllib.parse.urlencode({"csrf": csrf, "seq": seq, "action": f"open:{bos_item}"}).encode()
        page = urllib.request.urlopen(urllib.request.Request(  # the answer, then the page it leads to
            server.url + "/rate", data=form, method="POST", headers={
                "Cookie": f"rater_token={token}", "Origin": server.url,
                "Content-Type": "application/x-www-form-urlencoded"})).read().decode()
        assert "Only an item you rated or skipped" in page
        context = browser.new_context(**DESKTOP)
        context.add_cookies([{"name": "rater_token", "value": token, "url": server.url}])
        anna = context.new_page()
        anna.goto(server.url + "/rate")
        anna.wait_for_selector(".option")
        assert anna.inner_text("h1.question") != held_by_bo  # still anna's own claimed item
        context.close()
        bo.close()
    finally:
        server.stop()
    assert ratings(demo) == {}


class AttackerSite:
    """A page on another port of the same host (same site, another origin): it frames the rating page and posts
    a form to it from the teacher's browser."""

    def __init__(self, target: str) -> None:
        page = (f'<html><body><iframe id="f" src="{target}/rate" width="600" height="400"></iframe>'
                f'<form id="x" method="post" action="{target}/rate"><input name="seq" value="1">'
                '<input name="action" value="save"><input name="tick" value="1"></form></body></html>').encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_another_page_on_the_same_host_can_neither_frame_nor_rate(browser, served):
    attacker = AttackerSite(served.url)
    context = browser.new_context(**DESKTOP)
    try:
        tab = Page(browser, served.link("anna"), context=context).ready()  # the teacher is logged in
        evil = context.new_page()
        evil.goto(attacker.url)
        evil.wait_for_timeout(1000)
        frame = evil.frame_locator("#f")
        assert frame.locator(".option").count() == 0  # framing refused (frame-ancestors 'none')
        with evil.expect_navigation():
            evil.evaluate("document.getElementById('x').submit()")
        assert "refused" in evil.inner_text("body").lower()
        time.sleep(0.5)
        assert ratings(served.db) == {}
        tab.close()
    finally:
        context.close()
        attacker.close()


def test_requests_per_link_are_capped_with_a_clear_page(browser, demo):
    server = Served(demo, "--requests-per-minute", "10")
    try:
        link = server.link("anna")
        tab = Page(browser, link)
        for _ in range(12):
            tab.page.goto(server.url + "/instructions")
        assert "Too many requests" in tab.page.inner_text("body")
        tab.close()
    finally:
        server.stop()


def test_tokens_never_reach_the_servers_output_even_in_malformed_requests(browser, demo):
    server = Served(demo, "--host", "127.0.0.1")
    link = server.link("anna")
    token = link.rsplit("/", 1)[1]
    try:
        tab = Page(browser, link).ready()
        tab.close()
        with socket.create_connection(("127.0.0.1", server.port)) as raw:  # an over-long request line
            raw.sendall(b"GET /t/" + token.encode() + b"x" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            raw.recv(1000)
        with socket.create_connection(("127.0.0.1", server.port)) as raw:  # an over-long cookie, then garbage
            raw.sendall(b"GET /rate HTTP/1.1\r\nHost: x\r\nCookie: rater_token=" + token.encode() * 3000 + b"\r\n\r\n")
            raw.recv(1000)
        with socket.create_connection(("127.0.0.1", server.port)) as raw:
            raw.sendall(b"\x16\x03\x01 /t/" + token.encode() + b" nonsense\r\n\r\n")
            raw.recv(1000)
    finally:
        output = server.stop()
    assert token not in output, output[-2000:]


def test_tokens_are_stored_only_as_hashes(demo):
    link = rater(demo, "teachers", "add", "anna").strip().splitlines()[-1]
    token = link.rsplit("/", 1)[1]
    assert len(token) >= 32 and token.encode() not in demo.read_bytes()
    with sqlite3.connect(demo) as connection:
        stored = connection.execute("SELECT token_sha256 FROM teacher_access").fetchone()[0]
    import hashlib
    assert stored == hashlib.sha256(token.encode()).hexdigest()


def test_teacher_names_and_addresses_are_checked(demo):
    from typer.testing import CliRunner

    from rater.cli import app

    def run(*args: str):  # in this process: every case ends before anything is served
        result = CliRunner().invoke(app, ["--db", str(demo), *args])
        return result.exit_code, " ".join((result.stdout + result.stderr).replace("│", " ").split())

    for name in ("", "   ", "a" * 65, "anna\x1b[31m"):
        code, output = run("teachers", "add", name)
        assert code == 2 and "Traceback" not in output, (name, output)
    for url in ("javascript:alert(1)", "file:///etc/passwd", "ftp://school", "http://", "https://school/rater"):
        for args in (["teachers", "add", "anna", "--url", url], ["serve", "--public-url", url]):
            code, output = run(*args)
            assert code == 2 and ("http:// or https://" in output or "root of an address" in output), (args, output)
    with sqlite3.connect(demo) as connection:
        assert connection.execute("SELECT count(*) FROM teacher_access").fetchone()[0] == 0


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


# one process, shared work -----------------------------------------------------------------------------------

def test_teachers_share_one_process_and_the_work_out_with_an_overlap(browser, demo):
    server = Served(demo, "--overlap", "1")
    tabs = []
    try:
        tabs.append(Page(browser, server.link("anna")).ready())
        tabs.append(Page(browser, server.link("bo")).ready())
        assert tabs[0].question() != tabs[1].question()  # each holds an item of their own
        assert descendants(server.process.pid) == []  # no process per page
        for tab in tabs:
            tab.page.keyboard.press("1")
            tab.page.keyboard.press("Space")
        wait_for_ratings(demo, {"anna": 4, "bo": 4})
        rater(demo, "study", "overlap", "--off")  # read live: the next item may be any item again
        for tab in tabs:
            tab.page.wait_for_selector(".option")
    finally:
        for tab in tabs:
            tab.close()
        server.stop()
    with sqlite3.connect(demo) as connection:
        items = connection.execute("SELECT DISTINCT rater.name, rating.item_id FROM rating JOIN rater ON rater.id = "
                                   "rating.rater_id").fetchall()
    assert len({item for _, item in items}) == 2  # each teacher got an item of their own


def chromium_processes() -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"chrom" in (entry / "cmdline").read_bytes():
                    found.add(int(entry.name))
            except OSError:
                pass
    return found


def test_a_browser_killed_mid_item_gives_the_item_back_after_the_idle_time(playwright, browser, demo):
    server = Served(demo, "--overlap", "1", "--idle", "3")
    try:
        before = chromium_processes()  # a browser of its own, killed with SIGKILL: no goodbye request
        doomed = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        held = Page(doomed, server.link("anna")).ready().question()
        for pid in chromium_processes() - before:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        with sqlite3.connect(demo) as connection:
            assert connection.execute("SELECT count(*) FROM lease").fetchone()[0] == 1
        deadline = time.monotonic() + 30
        while True:  # within the idle time and the watcher's round, the hold is gone
            with sqlite3.connect(demo) as connection:
                if connection.execute("SELECT count(*) FROM lease").fetchone()[0] == 0:
                    break
            assert time.monotonic() < deadline, "the dead browser's item is still held"
            time.sleep(0.2)
        data = json.loads(rater(demo, "study", "status", "--format", "json"))
        assert data["held"] == [] and data["lacking"] == 12  # nobody holds it: the next claim may take it
        assert held
    finally:
        server.stop()


def test_a_database_that_goes_down_gives_a_clear_page_and_the_next_request_after_it_works(browser, tmp_path):
    pytest.importorskip("psycopg", reason="the postgres extra is not installed (`make test` installs it)")
    from tests.pg_server import find_bin_dir, start_server

    if find_bin_dir() is None:
        pytest.skip("no PostgreSQL server binaries on this machine (`make test` installs Debian's postgresql)")
    pg = start_server()
    try:
        url = pg.create_database("web_down")
        rater(url, "demo")  # type: ignore[arg-type]
        server = Served(url)
        try:
            tab = Page(browser, server.link("anna")).ready()
            import psycopg

            def drafts() -> int:
                with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
                    return connection.execute("SELECT count(*) FROM draft").fetchone()[0]
            pg.halt()
            tab.page.locator(".option").first.click()  # a tick while the database is away: not kept, and said
            tab.page.wait_for_selector("#notices >> text=not kept yet", timeout=15_000)
            pg.resume()
            deadline = time.monotonic() + 30
            while drafts() == 0:  # the page sends it again, and says nothing more once it is kept
                assert time.monotonic() < deadline, "the tick was never kept"
                time.sleep(0.2)
            tab.page.wait_for_function("!document.getElementById('notices').textContent.includes('not kept yet')")
            pg.halt()
            tab.page.wait_for_timeout(2100)  # past the 2 s a looked-up name is kept: the page's request needs the database
            tab.page.reload()
            assert "cannot be reached" in tab.page.inner_text("body")
            status = tab.page.evaluate("fetch('/rate').then(r => r.status)")
            assert status == 503
            pg.resume()
            tab.page.goto(server.url + "/rate")
            tab.page.wait_for_selector(".option")
            assert tab.page.locator(".option input[type=checkbox]").first.is_checked()  # the tick kept above
            tab.page.wait_for_timeout(700)
            tab.page.keyboard.press("Space")
            tab.page.wait_for_selector(".option")
            deadline = time.monotonic() + 30
            while True:
                with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
                    if connection.execute("SELECT count(*) FROM rating").fetchone()[0] == 4:
                        break
                assert time.monotonic() < deadline
                time.sleep(0.2)
            tab.close()
        finally:
            output = server.stop()
        assert pg.password not in output
    finally:
        pg.stop()


def test_the_page_in_uncertain_order_shows_the_items_the_judges_are_least_sure_about_first(browser, demo):
    from rater.store.engine import create_store_engine, database_url
    from tests.test_uncertain import judged_study

    engine = create_store_engine(database_url(str(demo)))
    expected = judged_study(engine)
    with sqlite3.connect(demo) as db:
        questions = dict(db.execute("SELECT id, question FROM item").fetchall())
    engine.dispose()
    server = Served(demo, "--order", "uncertain")
    try:
        page = Page(browser, server.link("anna")).ready()
        shown = []
        for _ in range(6):
            shown.append(page.question().split(":", 1)[1].strip())
            progress = page.page.inner_text("body")
            with page.page.expect_navigation(url="**/rate", timeout=60_000):
                page.page.keyboard.press("1")
                page.page.keyboard.press("Space")
            page.page.wait_for_selector(".option")
            page.page.wait_for_timeout(700)  # past the page's half-second rule
        assert shown[:5] == [questions[i] for i in expected] and shown[5] not in shown[:5]
        assert "no judge has rated this item" in progress
        page.close()
    finally:
        output = server.stop()
    assert "Ordered by the judges' uncertainty: 5 items scored" in " ".join(output.split())


def test_nothing_left_looks_again_and_gets_an_item_another_teacher_let_go(browser, tmp_path):
    """K 1, three items. bo holds one and closes his tab; anna rates the other two and is told nothing is left
    for her, on a page that reloads itself. Once bo's hold has gone (the idle time), her next load looks again and
    gives her bo's item."""
    db = tmp_path / "three.db"
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"context": "T.", "question": f"Fråga {n}?", "answer": f"s {n}",
                                         "distractors": [f"d {n}"]}) + "\n" for n in range(3)))
    rater(db, "import", str(items))
    server = Served(db, "--overlap", "1", "--idle", "3")
    try:
        bo = Page(browser, server.link("bo")).ready()
        held = bo.question()
        anna = Page(browser, server.link("anna")).ready()
        for _ in range(2):
            with anna.page.expect_navigation(url="**/rate", timeout=60_000):
                anna.page.keyboard.press("1")
                anna.page.keyboard.press("Space")
            anna.page.wait_for_timeout(700)
        text = " ".join(anna.page.inner_text("main").split())
        assert "Nothing is left for you" in text and "This page looks again every 30 seconds" in text
        assert anna.page.locator('meta[http-equiv="refresh"]').get_attribute("content") == "30"
        bo.close()  # no goodbye: his hold ends after the idle time
        deadline = time.monotonic() + 30
        while not anna.page.locator(".option").count():
            assert time.monotonic() < deadline, "the freed item never came to anna"
            anna.page.wait_for_timeout(1000)
            anna.page.reload()
        assert anna.question() == held
        anna.page.wait_for_timeout(700)
        with anna.page.expect_navigation(url="**/rate", timeout=60_000):
            anna.page.keyboard.press("Space")
        text = " ".join(anna.page.inner_text("main").split())
        assert "The study is done: every item has a teacher's rating." in text and "looks again" not in text
        assert not anna.page.locator('meta[http-equiv="refresh"]').count()  # nothing will come free
    finally:
        server.stop()


def test_keys_neither_tick_nor_save_options_not_yet_in_view(browser, tmp_path):
    """A short desktop window and nine long options: key 9 shows option 9 instead of ticking it unseen, and space
    is refused while options are still unseen; once shown, the same keys tick and save."""
    db = tmp_path / "long.db"
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"context": "T.", "question": "Lång fråga?", "answer": "s",
                                 "distractors": [f"alternativ {n} " + "med många ord " * 30 for n in range(9)]},
                                ensure_ascii=False) + "\n")
    rater(db, "import", str(items))
    server = Served(db)
    tab = Page(browser, server.link("anna"), {"viewport": {"width": 1000, "height": 500}}).ready()
    try:
        tab.page.keyboard.press("9")
        tab.page.wait_for_selector("text=Option 9 was not in view yet")
        assert not tab.page.locator("input[name=tick]").nth(8).is_checked()
        tab.page.keyboard.press("Space")
        tab.page.wait_for_selector("text=Not shown yet: options ")
        tab.page.wait_for_timeout(300)
        assert ratings(db) == {}
        tab.page.keyboard.press("9")  # (it was scrolled into view)
        assert tab.page.locator("input[name=tick]").nth(8).is_checked()
        for n in range(9):  # every option through the window
            tab.page.locator(".option").nth(n).scroll_into_view_if_needed()
            tab.page.wait_for_timeout(100)
        with tab.page.expect_navigation(url="**/rate", timeout=30_000):
            tab.page.keyboard.press("Space")
        wait_for_ratings(db, {"anna": 9})
        assert [a for _, _, a, _ in rows(db, "anna")] == [0] * 8 + [1]
    finally:
        tab.close()
        server.stop()


def test_two_tabs_of_the_done_page_do_not_reload_each_other(browser, tmp_path):
    """Work shared out, nothing left: each load of the done page looks again for work. Finding nothing again is no
    new page, so a second tab of it does not make the first reload (which, as it loads, would make the second
    reload, and so on for as long as both are open)."""
    db = tmp_path / "one.db"
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"context": "T.", "question": f"Fråga {n}?", "answer": "s",
                                         "distractors": ["d"]}) + "\n" for n in range(2)))
    rater(db, "import", str(items))
    server = Served(db, "--overlap", "1", "--idle", "4")  # the page asks the server every second
    try:
        Page(browser, server.link("bo")).ready()  # bo holds the other item: nothing is left for anna, for now
        link = server.link("anna")
        first = Page(browser, link).ready()
        with first.page.expect_navigation(url="**/rate", timeout=60_000):
            first.page.keyboard.press("Space")
        first.page.wait_for_selector("body.done")
        assert "Nothing is left for you" in first.page.inner_text("main")
        loads: list[str] = []
        first.page.on("load", lambda _page: loads.append("first"))
        second = Page(browser, link, context=first.context)
        second.page.wait_for_selector("body.done")
        second.page.on("load", lambda _page: loads.append("second"))
        first.page.wait_for_timeout(6000)
        assert loads == []
    finally:
        server.stop()


def test_a_tick_after_a_revocation_closes_the_page_at_once(browser, demo):
    """The heartbeat comes every 30 s at most; a tick's draft refused (403) says so at once, not as a tick kept."""
    server = Served(demo, "--idle", "200")  # a heartbeat every 30 s: too slow to be what closes the page here
    tab = Page(browser, server.link("anna")).ready()
    try:
        rater(demo, "teachers", "revoke", "anna")
        tab.page.keyboard.press("1")
        tab.page.wait_for_selector("body.-closed", timeout=5_000)
        assert tab.page.locator(".closed-dialog").inner_text().strip().startswith("Session ended")
    finally:
        tab.close()
        server.stop()
