"""One writer thread per run: store work queued from the event loop runs in batches, one transaction per batch.

Each piece of work is committed as soon as the thread gets to it, together with whatever else arrived meanwhile,
so a finished request or item is stored at once and a busy run does not pay a commit per row. Within a batch,
rows for one table go in with one executemany and the judgements of many items with one insert. A batch that
fails is retried one piece at a time, so only the failing piece fails."""

import asyncio
import queue
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from sqlalchemy import Engine, insert
from sqlmodel import Session

from rater.core.domain import Judgement
from rater.store.drafts import Marks, delete_drafts, save_draft
from rater.store.engine import again_if_dropped, session_scope
from rater.store.ratings import check_not_stale, mark_beyond_k, save_many_judgements
from rater.store.study import Study, recount_need
from rater.store.tally import is_teacher, retally

MAX_BATCH = 512
_STOP = object()


@dataclass(frozen=True)
class Ratings:
    """One item's judgements by one rater in one scope. A teacher's save carries `expected`, the revision of each
    rating the screen showed (None: not rated), so a save that another window overtook fails (StaleSave) instead
    of overwriting it; and with work shared out it ends the teacher's lease on the item. Its result is a `Saved`."""

    rater_id: int
    eval_set_id: int | None
    item_id: int
    judgements: Sequence[Judgement]
    release_lease: bool = False  # work shared out: the teacher's lease on the item ends with the ratings
    expected: dict[int, int | None] | None = None


@dataclass(frozen=True)
class Saved:
    """What a save of one item came to: `beyond_k` when the teacher's hold on the item had lapsed and K other
    teachers had rated it meanwhile (the ratings are kept, flagged)."""

    beyond_k: bool = False


@dataclass(frozen=True)
class DraftMarks:
    """A teacher's unsaved ticks and reasons of one item (empty: no draft)."""

    rater_id: int
    eval_set_id: int | None
    item_id: int
    marks: Marks


@dataclass(frozen=True)
class Row:
    """A new row of a table, as column values."""

    table: Any
    values: dict


Work = Callable[[Session], Any] | Ratings | Row | DraftMarks


class StoreWriter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.work: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="rater-store-writer", daemon=True)
        self.thread.start()

    def submit(self, work: Work) -> asyncio.Future:
        """Queue `work`; the future gets its result once it is committed (or its error)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.work.put((work, future, loop))
        return future

    async def close(self) -> None:
        """Wait for everything queued to be committed, then end the thread."""
        self.work.put(_STOP)
        await asyncio.to_thread(self.thread.join)

    def _run(self) -> None:
        while True:
            batch = [self.work.get()]
            while len(batch) < MAX_BATCH and not self.work.empty():
                batch.append(self.work.get())
            stop = _STOP in batch
            batch = [piece for piece in batch if piece is not _STOP]
            if batch:
                self._write(batch)
            if stop:
                return

    def _write(self, batch: list) -> None:
        try:
            results = again_if_dropped(lambda: self._commit([work for work, _, _ in batch]))
        except Exception as error:  # a failing piece spoils its batch: retry each on its own, so only it fails
            if len(batch) > 1:
                for piece in batch:
                    self._write([piece])
                return
            _, future, loop = batch[0]
            _hand_back(loop, future, None, error)
            return
        for (_, future, loop), result in zip(batch, results):
            _hand_back(loop, future, result, None)

    def _commit(self, works: list[Work]) -> list[Any]:
        with session_scope(self.engine) as session:
            return _apply(session, works)


def _apply(session: Session, works: list[Work]) -> list[Any]:
    """Everything of one batch in the caller's transaction; the result of each piece, in order."""
    rows: dict[Any, list[dict]] = defaultdict(list)
    ratings: dict[tuple[int, int | None], list[tuple[int, Sequence[Judgement]]]] = defaultdict(list)
    lapsing: list[tuple[int, Ratings]] = []  # saves that end a hold: beyond K if it had lapsed and K others rated
    results: list[Any] = [None] * len(works)
    for index, work in enumerate(works):
        if isinstance(work, Row):
            rows[work.table].append(work.values)
        elif isinstance(work, Ratings):
            if work.expected is not None:
                check_not_stale(session, rater_id=work.rater_id, item_id=work.item_id, eval_set_id=work.eval_set_id,
                                expected=work.expected)
            ratings[work.rater_id, work.eval_set_id].append((work.item_id, work.judgements))
            if work.release_lease:
                lapsing.append((index, work))
            else:
                results[index] = Saved()
        elif isinstance(work, DraftMarks):
            save_draft(session, rater_id=work.rater_id, item_id=work.item_id, eval_set_id=work.eval_set_id,
                       marks=work.marks)
        else:
            results[index] = work(session)
    for table, values in rows.items():
        session.execute(insert(table), values)
    releasing: dict[tuple[int, int | None], set[int]] = defaultdict(set)
    for _, work in lapsing:
        releasing[work.rater_id, work.eval_set_id].add(work.item_id)
    live: dict[tuple[int, int | None], set[int]] = {}
    for (rater_id, eval_set_id), items in ratings.items():
        save_many_judgements(session, rater_id=rater_id, eval_set_id=eval_set_id, items=items, tally=False)
        ending = releasing.get((rater_id, eval_set_id), set())
        if others := [item_id for item_id, _ in items if item_id not in ending]:
            delete_drafts(session, rater_id=rater_id, eval_set_id=eval_set_id, item_ids=others)
        if ending:  # their drafts and leases go together
            live[rater_id, eval_set_id] = Study(eval_set_id).end_holds(session, rater_id=rater_id,
                                                                       item_ids=sorted(ending))
    for index, work in lapsing:
        beyond = (work.item_id not in live[work.rater_id, work.eval_set_id]
                  and Study(work.eval_set_id).lapsed_beyond_k(session, rater_id=work.rater_id, item_id=work.item_id))
        if beyond:
            mark_beyond_k(session, rater_id=work.rater_id, item_id=work.item_id, eval_set_id=work.eval_set_id,
                          tally=False)
        results[index] = Saved(beyond_k=beyond)
    # only a teacher's first save of an item changes how many teachers it still needs (judges never count)
    counted = [w.item_id for w in works if isinstance(w, Ratings) and w.release_lease and w.eval_set_id is None]
    recount_need(session, counted)
    tallied: dict[int | None, list[int]] = defaultdict(list)  # the teachers' items, tallied once in id order
    for (rater_id, eval_set_id), saved in ratings.items():
        if is_teacher(session, rater_id):
            tallied[eval_set_id] += [item_id for item_id, _ in saved]
    if tallied:
        retally(session, tallied, locked=counted)  # recount_need's UPDATE has locked those rows
    return results


def _hand_back(loop: asyncio.AbstractEventLoop, future: asyncio.Future, result: Any, error: Exception | None) -> None:
    try:
        loop.call_soon_threadsafe(_settle, future, result, error)
    except RuntimeError:  # the loop is closed: nobody waits for this result any more (it is committed anyway)
        pass


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():  # the waiting side was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
