"""One writer thread per run: store work queued from the event loop runs in batches, one transaction per batch.

Each piece of work is committed as soon as the thread gets to it, together with whatever else arrived meanwhile,
so a finished request or item is stored at once and a busy run does not pay one commit per row. A batch that
fails is retried one piece at a time, so only the failing piece fails."""

import asyncio
import queue
import threading
from typing import Any, Callable

from sqlalchemy import Engine
from sqlmodel import Session

from rater.store.engine import session_scope

MAX_BATCH = 256
_STOP = object()


class StoreWriter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.work: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="rater-store-writer", daemon=True)
        self.thread.start()

    def submit(self, write: Callable[[Session], Any]) -> asyncio.Future:
        """Queue `write(session)`; the future gets its result once it is committed (or its error)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.work.put((write, future, loop))
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
            with session_scope(self.engine) as session:
                results = [write(session) for write, _, _ in batch]
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
