"""A teacher's rating on the web page: one `TeacherSession` per teacher, shared by every tab they open, presenting
what the one runner asks through the same `HumanRater` the terminal screen uses. So claims, holds, overlap,
revisits, history, skips, drafts, option order and saves are the terminal's code; this module only keeps what
the page shows and turns a posted form into the teacher's answer.

Every answer names the presentation it answers (`seq`): a double tap, a second tab or a page left open long ago
answers an item that is gone, and nothing is saved for the item that replaced it."""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from rater.core.domain import ItemView, Judgement, LookAgain, Reason, Revisit
from rater.core.errors import RaterError, StaleSave
from rater.raters.agenda import Queue
from rater.raters.base import RunStart
from rater.raters.human import HumanRater
from rater.raters.runner import Callbacks, Run
from rater.store.writer import StoreWriter

MIN_DWELL = 0.5  # seconds an item is shown before an answer to it counts (the terminal's rule)
REASONS = {reason.value for reason in Reason}
Marks = dict[int, tuple[bool, str | None]]

log = logging.getLogger("rater.web")


@dataclass
class Answer:
    """What a posted form asks: `action` is save, skip, back or open (with `item_id`), for presentation `seq`."""

    action: str
    seq: int
    ticked: set[int] = field(default_factory=set)
    reasons: dict[int, str] = field(default_factory=dict)
    seconds: float | None = None
    item_id: int | None = None


class TeacherSession:
    """One teacher's run and what their page shows: the item (or the summary), its ticks so far, and notices."""

    def __init__(self, engine: Engine, name: str, queue: Queue, writer: StoreWriter, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine, self.name, self.queue, self.writer, self.clock = engine, name, queue, writer, clock
        self.rater = HumanRater(name, presenter=self)
        self.state = "loading"  # loading, item, saving, done (nothing left), ended (stopped, revoked, failed)
        self.item: ItemView | None = None
        self.seq = 0
        self.looked = 0  # how often the run has found nothing left
        self.lacking: int | None = None  # work shared out: items the study still needs ratings for, when last asked
        self.marks: Marks = {}
        self.shown_at = 0.0
        self.left: list[ItemView] = []
        self.notices: list[tuple[str, str]] = []  # (kind, text key or text) said on the next page
        self.unsaved: dict[int, Marks] = {}
        self.start: RunStart | None = None
        self.rated = 0
        self.accepted = 0
        self.judged = 0
        self.last_seen = clock()
        self.changed = asyncio.Event()
        self.error: BaseException | None = None
        self.task: asyncio.Task | None = None
        self.draft_written: asyncio.Future | None = None  # the last draft's write (done once committed)

    # the run ------------------------------------------------------------------------------------------------

    def begin(self) -> None:
        run = Run(self.rater, self.engine, self.queue, Callbacks(on_item=self._saved, on_start=self._started),
                  writer=self.writer)
        self.task = asyncio.create_task(run.go(), name=f"rating:{self.name}")
        self.task.add_done_callback(self._ended)

    def _started(self, start: RunStart) -> None:
        self.start = start

    def _saved(self, item: ItemView, judgements: list[Judgement]) -> None:
        if not item.previous:
            self.rated += 1
        self.judged += len(judgements)
        self.accepted += sum(j.accepted for j in judgements)

    def _ended(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.error = task.exception()
            if isinstance(self.error, SQLAlchemyError):  # the database away: the next request starts a new run
                log.warning("%s's rating ended: the database could not be reached (%s)", self.name,
                            type(self.error).__name__)
            elif not isinstance(self.error, RaterError):  # a bug or a failure nobody foresaw: the organizer must see it
                log.error("%s's rating ended on an unexpected error", self.name, exc_info=self.error)
        self.state = "ended"
        self._changed()

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def stop(self) -> None:
        """End the run (idle, revoked, server stopping): the held item goes back to the others."""
        self.rater.stop()

    async def wait_for_change(self, seq: int, state: str, timeout: float, looked: int | None = None) -> None:
        """Until something else than presentation `seq` in `state` is up, or the run has looked for work again
        since `looked` (or `timeout` seconds pass)."""
        deadline = self.clock() + timeout
        while (self.seq == seq and self.state == state and looked in (None, self.looked)
               and (remaining := deadline - self.clock()) > 0):
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                return

    def _changed(self) -> None:
        self.changed.set()

    # the presenter: what the runner asks the teacher ---------------------------------------------------------

    def present(self, item: ItemView) -> None:
        kept = self.unsaved.pop(item.id, None)
        if kept is None:
            marks = {j.distractor_id: j for j in (item.draft or item.previous)}
            kept = {d.id: (bool(marks[d.id].accepted), marks[d.id].reason) for d in item.distractors if d.id in marks}
        self.item, self.marks, self.state = item, kept, "item"
        self.seq += 1
        self.shown_at = self.clock()
        self.notices.extend(("note", note) for note in item.notes)
        self._changed()

    def exhausted(self, left: Sequence[ItemView]) -> None:
        if self.state != "done" or [i.id for i in self.left] != [i.id for i in left]:
            self.seq += 1  # a new page (other tabs reload); finding nothing again is not (or two tabs of the done
            # page, each looking again as it loads, would reload each other forever)
        self.item, self.left, self.state = None, list(left), "done"
        self.looked += 1
        self._changed()

    def look_again(self) -> bool:
        """On "nothing is left for you" while work is shared out, look for an item again (the page asks at every
        load, and reloads itself): True when the run was asked to."""
        if self.state != "done" or self.start is None or self.start.overlap is None:
            return False
        return self.rater.decide(LookAgain())

    def save_failed(self, item: ItemView, error: RaterError) -> None:
        if isinstance(error, StaleSave):
            self.notices.append(("warning", "overtaken"))
        else:
            self.notices.append(("error", error.message))

    def beyond_k(self, item: ItemView) -> None:
        self.notices.append(("warning", "beyond_k"))

    # the teacher's answers ------------------------------------------------------------------------------------

    def draft(self, seq: int, marks: Marks) -> bool:
        """Keep the ticks of the item on the page (a reload shows them; the store keeps them across restarts)."""
        if seq != self.seq or self.item is None:
            return False
        known = {d.id for d in self.item.distractors}
        self.marks = {d: m for d, m in marks.items() if d in known}
        self.draft_written = self.rater.draft(self.item, self.marks if any(t or r for t, r in self.marks.values()) else {})
        if self.draft_written is not None:  # its error is read here when the page has stopped waiting for it
            self.draft_written.add_done_callback(lambda f: f.cancelled() or f.exception())
        return True

    def answer(self, answer: Answer) -> str | None:
        """Hand the teacher's answer to the runner; a text key saying why nothing happened, else None."""
        self.last_seen = self.clock()
        if answer.seq != self.seq:
            return "outdated"
        if self.state == "done":
            if answer.action == "open" and answer.item_id is not None:
                return None if self.rater.decide(Revisit(answer.item_id)) else "outdated"
            if answer.action == "back":
                return None if self.rater.decide(Revisit()) else "outdated"
            return "outdated"
        item = self.item
        if self.state != "item" or item is None:
            return "outdated"
        if answer.action == "open" and answer.item_id is not None:
            self.draft(answer.seq, self.marks)
            return None if self.rater.decide(Revisit(answer.item_id)) else "outdated"
        if self.clock() - self.shown_at < MIN_DWELL:
            return "just_shown"
        if answer.action == "save":
            marks = self._marks(item, answer)
            judgements = [Judgement(d.id, marks[d.id][0], reason=marks[d.id][1], seconds=self._seconds(answer))
                          for d in item.distractors]
            self.unsaved[item.id] = marks  # shown again if the save fails
            decided = self.rater.decide(judgements)
            if decided:
                self.marks, self.state = marks, "saving"
                self._changed()
        elif answer.action == "skip":
            self.draft(answer.seq, self._marks(item, answer))
            decided = self.rater.decide([])
        elif answer.action == "back":
            if not item.earlier:
                return "first_item"
            self.draft(answer.seq, self._marks(item, answer))
            decided = self.rater.decide(Revisit())
        else:
            return "outdated"
        return None if decided else "outdated"

    def _marks(self, item: ItemView, answer: Answer) -> Marks:
        marks: Marks = {}
        for d in item.distractors:
            ticked = d.id in answer.ticked
            reason = None if ticked else (answer.reasons.get(d.id) or None)
            marks[d.id] = (ticked, reason)
        return marks

    def _seconds(self, answer: Answer) -> float:
        """The page's count of seconds the item was visible, never more than it has been up on the server."""
        up = self.clock() - self.shown_at
        seconds = up if answer.seconds is None else max(0.0, min(answer.seconds, up))
        return round(seconds, 2)

    def take_notices(self) -> list[tuple[str, str]]:
        notices, self.notices = self.notices, []
        return notices


class Sessions:
    """Every teacher's session in this process; a teacher's second tab gets the same one (never a second claim).
    A session nobody asked for in `idle` seconds is stopped, so a vanished browser's item goes back."""

    def __init__(self, engine: Engine, queue: Queue, *, idle: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine, self.queue, self.idle, self.clock = engine, queue, idle, clock
        self.by_name: dict[str, TeacherSession] = {}
        self.writer: StoreWriter | None = None

    def get(self, name: str) -> TeacherSession:
        session = self.by_name.get(name)
        if session is None or (session.state == "ended" and not session.running):
            if self.writer is None:
                self.writer = StoreWriter(self.engine)
            session = TeacherSession(self.engine, name, self.queue, self.writer, clock=self.clock)
            self.by_name[name] = session
            session.begin()
        session.last_seen = self.clock()
        return session

    def end(self, name: str) -> None:
        session = self.by_name.pop(name, None)
        if session is not None:
            session.stop()

    def idle_ones(self) -> list[str]:
        now = self.clock()
        return [name for name, s in self.by_name.items() if now - s.last_seen > self.idle]

    async def close(self) -> None:
        tasks = [s.task for s in self.by_name.values() if s.task is not None]
        for name in list(self.by_name):
            self.end(name)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.writer is not None:
            await self.writer.close()

