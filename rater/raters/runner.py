"""The one runner: drives any Rater (teacher, LLM judge, rule checks) over a queue of items and saves each item's
judgements as soon as they exist. Every store call runs in a worker thread (reads) or the run's writer thread
(writes), so the event loop (a rating screen, or requests in flight) never waits on the database."""

import asyncio
from dataclasses import dataclass, field, replace
from typing import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from rater.core.domain import ItemView, Judgement, LookAgain, Revisit
from rater.core.errors import FatalRaterError, RaterError, SaveError, StaleSave, StoreError
from rater.raters.agenda import Agenda, Queue, open_run

__all__ = ["Queue", "RunSummary", "run_rater"]
from rater.raters.base import Rater, RunStart, StopRun
from rater.store.drafts import Marks
from rater.store.engine import database_text, in_thread, known_store_error
from rater.store.study import RENEW_SECONDS
from rater.store.tables import JudgeRequest
from rater.store.writer import DraftMarks, Ratings, Row, Saved, StoreWriter

BACKLOG = 512  # items of a non-interactive rater waiting for the writer before the runner waits as well


@dataclass
class RunSummary:
    items: int = 0
    judgements: int = 0
    accepted: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)
    stopped: bool = False  # the rater ended the run early

    @property
    def accepted_rate(self) -> float:
        return self.accepted / self.judgements if self.judgements else 0.0


def _ratings(start: RunStart, item: ItemView, judgements: list[Judgement], *, interactive: bool,
             revisited: bool) -> Ratings:
    """The item's judgements as the writer saves them, checked against the distractors it was shown with; each
    gets the place its distractor stood on the rater's screen. A teacher's save carries the revisions the screen
    showed (so a save another window overtook is refused), and, with work shared out, ends the teacher's hold."""
    place = {d.id: n for n, d in enumerate(item.distractors)}
    unknown = [j.distractor_id for j in judgements if j.distractor_id not in place]
    if unknown:
        raise RaterError(f"The rater returned judgements for distractors {unknown} not shown with item {item.id}.",
                         "this is a bug in the rater plugin")
    placed = [replace(j, position=place[j.distractor_id]) for j in judgements]
    expected = None
    if interactive:
        shown = {j.distractor_id: j.revision for j in item.previous}
        expected = {j.distractor_id: shown.get(j.distractor_id) for j in judgements}
    # a teacher's first save of an item is checked against K even in a run that began without one (K set since)
    return Ratings(start.rater_id, start.eval_set_id, item.id, placed,
                   release_lease=(start.overlap is not None or interactive) and not revisited, expected=expected)


class WriterRecords:
    """The run's `Records`: a rater's own records go to the run's writer thread."""

    def __init__(self, writer: StoreWriter, start: RunStart) -> None:
        self.writer, self.start = writer, start

    def judge_request(self, values: dict) -> asyncio.Future:
        return self.writer.submit(Row(JudgeRequest.__table__, values))  # type: ignore[attr-defined]

    def draft(self, item_id: int, marks: Marks) -> asyncio.Future:
        return self.writer.submit(DraftMarks(self.start.rater_id, self.start.eval_set_id, item_id, marks))


class Run:
    """One run of one rater over a queue: what it has in flight, what it is saving, what comes next and what it has
    done so far. Each item's judgements are committed as soon as they exist."""

    def __init__(self, rater: Rater, engine: Engine, queue: Queue, callbacks: "Callbacks",
                 writer: StoreWriter | None = None) -> None:
        self.rater, self.engine, self.queue, self.callbacks = rater, engine, queue, callbacks
        self.shared_writer = writer  # a server's one writer for all its runs; else the run starts its own
        self.summary = RunSummary()
        self.slots = asyncio.Semaphore(max(1, rater.max_concurrency))
        # interactive raters see one item at a time; others get items started ahead of the ones in flight
        self.window = 1 if rater.interactive else 2 * max(1, rater.max_concurrency) + 2
        self.rating: set[asyncio.Task] = set()
        self.saving: set[asyncio.Task] = set()

    async def go(self) -> RunSummary:
        opened = await in_thread(open_run, self.engine, self.rater, self.queue)
        source = opened.source
        self.writer = writer = self.shared_writer or StoreWriter(self.engine)
        self.start = start = replace(opened.start, records=WriterRecords(writer, opened.start))
        source.start = start
        self.rater.started(start)
        if self.callbacks.on_start:
            self.callbacks.on_start(start)
        self.agenda = Agenda(self.engine, start, replace(opened, start=start), self.rater)
        try:
            await self._loop()
        except StopRun:
            self.summary.stopped = True
        finally:
            for task in self.rating:
                task.cancel()
            try:
                await _drain(self.saving, 1)
            finally:
                await self.agenda.settle()  # (never raises)
                await source.close()  # leases of items still held go back to the other teachers
                await self.rater.finished()
                if writer is not self.shared_writer:
                    await writer.close()
        return self.summary

    async def _loop(self) -> None:
        while True:
            self.saving = await _drain(self.saving, BACKLOG)
            while len(self.rating) < self.window and (item := await self.agenda.next()) is not None:
                self.rating.add(asyncio.create_task(self._rate_one(item, self.agenda.showing_revisit)))
            if not self.rating:
                self.saving = await _drain(self.saving, 1)  # everything saved before the rater hears the queue is empty
                answer = await self.rater.exhausted(self.agenda.left_over())
                if isinstance(answer, Revisit):
                    await self.agenda.revisit(None, answer.item_id)
                    continue
                if isinstance(answer, LookAgain):  # work shared out: an item may have come free meanwhile
                    continue
                return
            done, self.rating = await asyncio.wait(self.rating, return_when=asyncio.FIRST_COMPLETED)
            errors = [error for task in done if (error := task.exception()) is not None]  # each one retrieved
            if errors:
                raise errors[0]  # a fatal error, or the rater stopping, ends the run here

    async def _rate_one(self, item: ItemView, revisited: bool) -> None:
        async with self.slots:
            holding = asyncio.create_task(self._keep_held(item)) if self.rater.interactive else None
            try:
                outcome = await self.rater.rate(item)
            except (FatalRaterError, StopRun):
                raise
            except RaterError as exc:
                self.summary.failures.append(f"item {item.id}: {exc.message}")
                if self.callbacks.on_failed:
                    self.callbacks.on_failed(item, exc)
                return
            finally:
                if holding is not None:
                    holding.cancel()
        if isinstance(outcome, Revisit):
            if not self.rater.interactive:
                raise RaterError(f"The rater {self.rater.name!r} asked to revisit an item but is not interactive.",
                                 "this is a bug in the rater plugin")
            await self.agenda.revisit(item, outcome.item_id)
        elif not outcome:
            self.summary.skipped += 1
            await self.agenda.skipped(item)
        elif self.rater.interactive:
            if not revisited:
                self.agenda.claim_ahead(item)  # the next item's claim runs beside the save
            await self._save(item, outcome, revisited)  # the next item waits: a failed save is presented again first
        else:  # the slot is free at once; the write goes on in the writer thread (a locked database stalls nothing)
            self.saving.add(asyncio.create_task(self._save(item, outcome, revisited)))

    async def _keep_held(self, item: ItemView) -> None:
        """While a teacher has an item on screen, renew the hold on it (work shared out), so a teacher who reads
        slowly never loses it to others; a screen that is gone stops renewing and the hold runs out."""
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            try:
                await self.agenda.source.renew(item)
            except SQLAlchemyError:
                pass  # the save still checks the hold; a database away for a moment is not the teacher's concern

    async def _save(self, item: ItemView, judgements: list[Judgement], revisited: bool) -> None:
        ratings = _ratings(self.start, item, judgements, interactive=self.rater.interactive, revisited=revisited)
        try:
            saved = await _stored(self.writer.submit(ratings), item, self.engine)
        except StaleSave as stale:  # another window of this teacher saved the item: show its answer and ask
            self.rater.save_failed(item, stale)
            await self.agenda.give_back_ahead()
            newer = tuple(stale.newer[d.id] for d in item.distractors if d.id in stale.newer)
            self.agenda.again(replace(item, previous=newer))
            return
        except StoreError as error:
            if not self.rater.save_failed(item, error):
                raise
            await self.agenda.give_back_ahead()
            self.agenda.again(item)
            return
        if isinstance(saved, Saved) and saved.beyond_k:
            self.rater.beyond_k(item)
        self.agenda.rated(item, revisited)
        self.summary.items += 1
        self.summary.judgements += len(judgements)
        self.summary.accepted += sum(j.accepted for j in judgements)
        if self.callbacks.on_item:
            self.callbacks.on_item(item, judgements)


@dataclass(frozen=True)
class Callbacks:
    """What a caller hears of a run: its start, each item saved, each item that failed."""

    on_item: Callable[[ItemView, list[Judgement]], None] | None = None
    on_start: Callable[[RunStart], None] | None = None
    on_failed: Callable[[ItemView, RaterError], None] | None = None


async def run_rater(rater: Rater, engine: Engine, queue: Queue = Queue(),
                    on_item: Callable[[ItemView, list[Judgement]], None] | None = None,
                    on_start: Callable[[RunStart], None] | None = None,
                    on_failed: Callable[[ItemView, RaterError], None] | None = None) -> RunSummary:
    """Rate every pending item of `queue`; each item's judgements are committed as soon as they exist."""
    return await Run(rater, engine, queue, Callbacks(on_item, on_start, on_failed)).go()


async def _drain(saving: set[asyncio.Task], below: int) -> set[asyncio.Task]:
    """Wait until fewer than `below` saves are running; a failed save ends the run with its error."""
    while saving:
        finished = {task for task in saving if task.done()}
        for task in finished:
            task.result()
        saving -= finished
        if len(saving) < below:
            break
        await asyncio.wait(saving, return_when=asyncio.FIRST_COMPLETED)
    return saving


async def _stored(write: asyncio.Future, item: ItemView, engine: Engine) -> object:
    """Wait for a queued write (its result); a database error becomes a SaveError naming the item, in plain words
    the teacher's screen can show (a failure rater cannot explain: the database's own words only in the hint,
    which the organizer's commands print and the teacher's screens do not)."""
    try:
        return await write
    except SQLAlchemyError as exc:
        url = engine.url.render_as_string(hide_password=False)  # (only to mask the password in what is shown)
        if (known := known_store_error(exc, url)) is not None:
            raise SaveError(item.id, known.message, known.hint) from exc
        raise SaveError(item.id, "the database refused them.",
                        f"tell the study's organizer; the database said: {database_text(exc, url)}") from exc
