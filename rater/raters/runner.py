"""The one runner: drives any Rater (teacher, LLM judge, rule checks) over a queue of items and saves each item's
judgements as soon as they exist. Every store call runs in a worker thread (reads) or the run's writer thread
(writes), so the event loop (a rating screen, or requests in flight) never waits on the database."""

import asyncio
from dataclasses import dataclass, field, replace
from typing import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from rater.core.domain import ItemView, Judgement, Revisit
from rater.core.errors import FatalRaterError, RaterError, StoreError
from rater.raters.agenda import Agenda, Queue, open_run

__all__ = ["Queue", "RunSummary", "run_rater"]
from rater.raters.base import Rater, RunStart, StopRun
from rater.store.tables import JudgeRequest
from rater.store.writer import Ratings, Row, StoreWriter

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


def _ratings(start: RunStart, item: ItemView, judgements: list[Judgement]) -> Ratings:
    """The item's judgements as the writer saves them, checked against the distractors it was shown with."""
    known = {d.id for d in item.distractors}
    unknown = [j.distractor_id for j in judgements if j.distractor_id not in known]
    if unknown:
        raise RaterError(f"The rater returned judgements for distractors {unknown} not shown with item {item.id}.",
                         "this is a bug in the rater plugin")
    return Ratings(start.rater_id, start.eval_set_id, item.id, judgements, release_lease=start.overlap is not None)


class WriterRecords:
    """The run's `Records`: a rater's own records go to the run's writer thread."""

    def __init__(self, writer: StoreWriter) -> None:
        self.writer = writer

    def judge_request(self, values: dict) -> asyncio.Future:
        return self.writer.submit(Row(JudgeRequest.__table__, values))  # type: ignore[attr-defined]


class Run:
    """One run of one rater over a queue: what it has in flight, what it is saving, what comes next and what it has
    done so far. Each item's judgements are committed as soon as they exist."""

    def __init__(self, rater: Rater, engine: Engine, queue: Queue, callbacks: "Callbacks") -> None:
        self.rater, self.engine, self.queue, self.callbacks = rater, engine, queue, callbacks
        self.summary = RunSummary()
        self.slots = asyncio.Semaphore(max(1, rater.max_concurrency))
        # interactive raters see one item at a time; others get items started ahead of the ones in flight
        self.window = 1 if rater.interactive else 2 * max(1, rater.max_concurrency) + 2
        self.rating: set[asyncio.Task] = set()
        self.saving: set[asyncio.Task] = set()

    async def go(self) -> RunSummary:
        start, source = await asyncio.to_thread(open_run, self.engine, self.rater, self.queue)
        self.writer = writer = StoreWriter(self.engine)
        self.start = start = replace(start, records=WriterRecords(writer))
        source.start = start
        self.rater.started(start)
        if self.callbacks.on_start:
            self.callbacks.on_start(start)
        self.agenda = Agenda(self.engine, start, source, self.rater.interactive)
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
                await source.close()  # leases of items still held go back to the other teachers
                await self.rater.finished()
                await writer.close()
        return self.summary

    async def _loop(self) -> None:
        while True:
            self.saving = await _drain(self.saving, BACKLOG)
            while len(self.rating) < self.window and (item := await self.agenda.next()) is not None:
                self.rating.add(asyncio.create_task(self._rate_one(item, self.agenda.showing_revisit)))
            if not self.rating:
                self.saving = await _drain(self.saving, 1)  # everything saved before the rater hears the queue is empty
                if isinstance(await self.rater.exhausted(), Revisit):
                    self.agenda.revisit(None)
                    continue
                return
            done, self.rating = await asyncio.wait(self.rating, return_when=asyncio.FIRST_COMPLETED)
            errors = [error for task in done if (error := task.exception()) is not None]  # each one retrieved
            if errors:
                raise errors[0]  # a fatal error, or the rater stopping, ends the run here

    async def _rate_one(self, item: ItemView, revisited: bool) -> None:
        async with self.slots:
            try:
                outcome = await self.rater.rate(item)
            except (FatalRaterError, StopRun):
                raise
            except RaterError as exc:
                self.summary.failures.append(f"item {item.id}: {exc.message}")
                if self.callbacks.on_failed:
                    self.callbacks.on_failed(item, exc)
                return
        if isinstance(outcome, Revisit):
            if not self.rater.interactive:
                raise RaterError(f"The rater {self.rater.name!r} asked to revisit an item but is not interactive.",
                                 "this is a bug in the rater plugin")
            self.agenda.revisit(item)
        elif not outcome:
            self.summary.skipped += 1
            await self.agenda.skipped(item)
        elif self.rater.interactive:
            await self._save(item, outcome, revisited)  # the next item waits: a failed save is presented again first
        else:  # the slot is free at once; the write goes on in the writer thread (a locked database stalls nothing)
            self.saving.add(asyncio.create_task(self._save(item, outcome, revisited)))

    async def _save(self, item: ItemView, judgements: list[Judgement], revisited: bool) -> None:
        try:
            await _stored(self.writer.submit(_ratings(self.start, item, judgements)), item)
        except StoreError as error:
            if not self.rater.save_failed(item, error):
                raise
            self.agenda.again(item)
            return
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


async def _stored(write: asyncio.Future, item: ItemView) -> None:
    """Wait for a queued write; a database error becomes a StoreError naming the item."""
    try:
        await write
    except SQLAlchemyError as exc:
        raise StoreError(f"Could not save the ratings of item {item.id}: {getattr(exc, 'orig', None) or exc}",
                         "check that the database is reachable and not locked by another program") from exc
