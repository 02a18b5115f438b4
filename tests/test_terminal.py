"""The rating screen in a real terminal (tmux), as a teacher uses it: `rater rate` running in a tmux pane of a
given size, keys sent with tmux send-keys at a person's pace (the screen's real clock), what the terminal shows
read with capture-pane, and what was saved read from the database. One run for each case of issue 20."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlmodel import Session

from rater.core.domain import Judgement
from rater.store.engine import session_scope
from rater.store.ratings import get_or_create_rater, save_judgements
from rater.store.study import Study
from rater.store.tables import Distractor, Draft, Lease, RaterRecord, Rating, RatingHistory, utcnow

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed (`make test` installs it with apt-get)")
PACE = 0.8  # seconds between a person's keys (the screen ignores a decision in an item's first 0.5 s)


class Terminal:
    """A tmux session running one command in a pane of `width` x `height`; the pane stays after the command ends
    and shows its exit code."""

    def __init__(self, name: str, width: int, height: int, args: list[str]) -> None:
        self.name = f"rater-test-{name}-{os.getpid()}"
        # Each terminal has its own tmux server (its own socket): on the shared default server, a session
        # started while the previous test's last session was being killed met a server on its way out ("server
        # exited unexpectedly").
        self.socket = Path(tempfile.gettempdir()) / f"{self.name}.tmux"
        self.tmux = [str(TMUX), "-S", str(self.socket), "-f", "/dev/null"]
        # (COLUMNS and LINES, when the test process has them, would override the pane's real size)
        command = " ".join(_quote(a) for a in ["env", "-u", "COLUMNS", "-u", "LINES", sys.executable, "-m",
                                                "rater.cli", *args])
        subprocess.run([*self.tmux, "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                        "-e", "TERM=xterm-256color", "-e", "RATER_LANG=en",
                        f"{command}; echo EXIT=$?; sleep 600"], check=True)

    def keys(self, *keys: str, pace: float = PACE) -> None:
        for key in keys:
            subprocess.run([*self.tmux, "send-keys", "-t", self.name, key], check=True)
            time.sleep(pace)

    def burst(self, *keys: str) -> None:
        """Keys in one go, as a double tap sends them."""
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-t", self.name], capture_output=True,
                              text=True).stdout

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if text in " ".join(shown.split()):
                return shown
            assert time.monotonic() < deadline, f"the terminal never showed {text!r}; it shows:\n{shown}"
            time.sleep(0.1)

    def resize(self, width: int, height: int) -> None:
        subprocess.run([*self.tmux, "resize-window", "-t", self.name, "-x", str(width), "-y", str(height)], check=True)

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)
        self.socket.unlink(missing_ok=True)


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


@pytest.fixture
def terminals():
    opened: list[Terminal] = []

    def open_terminal(name: str, width: int, height: int, args: list[str]) -> Terminal:
        terminal = Terminal(name, width, height, args)
        opened.append(terminal)
        return terminal

    yield open_terminal
    for terminal in opened:
        terminal.close()


def rate(db: Path, name: str = "anna", *extra: str) -> list[str]:
    return ["--db", str(db), "rate", "--as", name, "--lang", "en", *extra]


def ratings(engine, name: str = "anna") -> list[tuple[int, int, bool]]:
    with Session(engine) as session:
        return list(session.execute(select(Rating.item_id, Rating.shown_position, Rating.accepted)
                                    .join(RaterRecord).where(RaterRecord.name == name)
                                    .order_by(Rating.item_id, Rating.shown_position)).all())


def cli_engine(cli):
    from rater.store.engine import create_store_engine, database_url

    return create_store_engine(database_url(str(cli.db_path)))


def started(cli, name: str = "anna") -> None:
    """Mark the teacher as one who has rated (so no instructions open first): one rating of the last item."""
    engine = cli_engine(cli)
    with session_scope(engine) as session:
        rater_id = get_or_create_rater(session, name=name, kind="human").id
        last = session.execute(select(Distractor.item_id, Distractor.id).order_by(Distractor.id.desc())).first()
        save_judgements(session, rater_id=rater_id, item_id=last.item_id, judgements=[Judgement(last.id, False)])


def test_1_a_double_tap_saves_only_the_item_on_screen(cli, engine, terminals):
    cli("demo")
    started(cli)
    term = terminals("tap", 100, 30, rate(cli.db_path))
    term.wait_for("Vad gör ekorren")
    time.sleep(PACE)
    term.keys("1")
    term.burst("Space", "Space")
    term.wait_for("biblioteket")
    time.sleep(2)
    assert {item for item, _, _ in ratings(engine)} == {1, 12}  # (12: the one rating made before)


def test_2_a_terminal_too_small_takes_no_key(cli, engine, terminals):
    cli("demo")
    started(cli)
    term = terminals("small", 50, 12, rate(cli.db_path))
    term.wait_for("too small")
    term.keys("1", "Space", "s", "BSpace")
    assert {item for item, _, _ in ratings(engine)} == {12}
    term.resize(100, 30)
    shown = term.wait_for("Vad gör ekorren")
    assert "[x]" not in shown


def test_3_options_cut_off_are_never_saved_unseen(cli, engine, terminals, tmp_path):
    from tests.test_screen_integrity import items_file

    cli("import", items_file(tmp_path, 2, 9))
    started(cli)
    term = terminals("cut", 60, 16, rate(cli.db_path))
    term.wait_for("more options below")
    time.sleep(PACE)
    term.keys("Space")
    term.wait_for("Not shown yet")  # (the toast wraps beside the options)
    assert {item for item, _, _ in ratings(engine)} == {2}
    term.keys(*["Down"] * 12, pace=0.15)
    time.sleep(PACE)
    term.keys("Space")
    time.sleep(2)
    assert len([r for r in ratings(engine) if r[0] == 1]) == 9


def test_4_escape_cancels_a_reason_and_keeps_the_ticks_for_the_next_start(cli, engine, terminals):
    cli("demo")
    started(cli)
    term = terminals("escape", 100, 30, rate(cli.db_path))
    term.wait_for("Vad gör ekorren")
    time.sleep(PACE)
    term.keys("2", "r", "Escape")
    shown = term.wait_for("Vad gör ekorren")  # still rating: Esc cancelled the reason only
    assert "EXIT=" not in shown
    term.keys("Escape")
    shown = term.wait_for("EXIT=0")
    assert "Saved this time: 0 items (0 distractors). Everything you saved is kept" in " ".join(shown.split())
    with Session(engine) as session:
        assert session.execute(select(Draft.item_id)).scalars().all() == [1]
    again = terminals("escape2", 100, 30, rate(cli.db_path))
    shown = again.wait_for("Vad gör ekorren")
    assert shown.count("[x]") == 1


def test_5_two_teachers_see_their_own_option_order(cli, engine, terminals):
    import re

    cli("demo", "--baseline", "2")
    started(cli, "anna")
    started(cli, "bo")
    orders = []
    for name in ("anna", "bo"):
        term = terminals(name, 100, 30, rate(cli.db_path, name))
        shown = term.wait_for("Vad gör ekorren")
        orders.append(re.findall(r"\[ \] \d+\s+(.+?)\s*$", shown, re.MULTILINE))
    assert len(orders[0]) == 6 and sorted(orders[0]) == sorted(orders[1]) and orders[0] != orders[1]


def test_6_a_first_start_opens_the_instructions_and_a_line_says_what_a_tick_means(cli, terminals):
    cli("demo")
    term = terminals("first", 100, 30, rate(cli.db_path))
    term.wait_for("Instruktioner / Instructions")
    term.keys("Escape")
    term.wait_for("Bocka godtagbara distraktorer / tick acceptable ones")


def test_7_two_windows_of_one_teacher_never_overwrite_each_other_silently(cli, engine, terminals):
    cli("demo")
    started(cli)
    first, second = terminals("one", 100, 30, rate(cli.db_path)), terminals("two", 100, 30, rate(cli.db_path))
    first.wait_for("Vad gör ekorren")
    second.wait_for("Vad gör ekorren")
    time.sleep(PACE)
    first.keys("1", "Space")
    first.wait_for("biblioteket")
    second.keys("2", "Space")
    second.wait_for("Another window saved this item")
    assert [accepted for item, _, accepted in ratings(engine) if item == 1] == [True, False, False, False]


def test_8_a_lapsed_hold_saves_beyond_k_and_says_so(cli, engine, terminals):
    cli("demo")
    started(cli)
    cli("study", "overlap", "1")
    term = terminals("lapse", 100, 30, rate(cli.db_path))
    term.wait_for("items still need ratings")
    with session_scope(engine) as session:
        item = session.execute(select(Lease.item_id)).scalar_one()
        session.execute(update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))
        bo = get_or_create_rater(session, name="bo", kind="human").id
        ids = session.execute(select(Distractor.id).where(Distractor.item_id == item)).scalars().all()
        save_judgements(session, rater_id=bo, item_id=item, judgements=[Judgement(d, True) for d in ids])
    time.sleep(PACE)
    term.keys("1", "Space")
    term.wait_for("beyond K")  # (the toast wraps beside the item)
    with Session(engine) as session:
        assert set(session.execute(select(Rating.beyond_k).join(RaterRecord).where(RaterRecord.name == "anna",
                                                                                   Rating.item_id == item))
                   .scalars()) == {True}
        assert Study().progress(session).lacking == 10  # items 12 (anna's earlier one) and this one count once


def test_9_nothing_to_rate_is_said_before_any_screen(tmp_path, terminals):
    term = terminals("typo", 100, 30, rate(tmp_path / "typo.db"))
    term.wait_for("EXIT=2")
    assert "There is no database at" in " ".join(term.screen().split())
    assert not (tmp_path / "typo.db").exists()


def test_10_saving_an_item_again_unchanged_writes_no_history(cli, engine, terminals):
    cli("demo")
    started(cli)
    term = terminals("again", 100, 30, rate(cli.db_path))
    term.wait_for("Vad gör ekorren")
    time.sleep(PACE)
    term.keys("1", "Space")
    term.wait_for("biblioteket")
    term.keys("BSpace")
    term.wait_for("reviewing your rating no.")
    term.keys("Space")
    term.wait_for("biblioteket")
    with Session(engine) as session:
        assert session.execute(select(RatingHistory)).all() == []
        assert set(session.execute(select(Rating.revision)).scalars()) == {1}
