"""One worker thread per model, a bounded line in front of it, and text streamed back to the loop.

A llama.cpp model is not thread-safe, so its requests run one at a time on a single thread and
the event loop only ever awaits. At most `waiting` requests queue behind the one that runs; one
more is refused with `RateLimited` and a Retry-After estimated from recent request durations.
A consumer that goes away (client disconnect, cancellation) sets the job's `cancelled` event:
a queued job never starts, and a running one stops before its next token.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from server.errors import RateLimited, RequestTimeout

__all__ = ["Emit", "Finished", "InferenceWorker", "Job"]

Result = TypeVar("Result")
Emit = Callable[[str], None]
Job = Callable[[Emit, threading.Event], Result]

# Weight of the newest duration in the running mean that sets Retry-After.
_SMOOTHING = 0.3


@dataclass(frozen=True, slots=True)
class Finished(Generic[Result]):
    """The last item of a stream: what the job returned."""

    result: Result


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


class InferenceWorker:
    """Runs jobs one at a time on its own thread; `stream` yields each emitted text, then the result."""

    def __init__(self, name: str, *, waiting: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"siraya-local-{name}")
        self._name = name
        self._capacity = waiting + 1
        self._lock = threading.Lock()
        self._admitted = 0
        self._mean_seconds = 1.0
        self._live: set[threading.Event] = set()
        self._closed = False

    @property
    def admitted(self) -> int:
        """Jobs queued or running (a stopped consumer's job counts until its thread lets go)."""
        return self._admitted

    def submit(self, call: Callable[[], Any]) -> Future[Any]:
        """Run `call` on the worker thread, outside the line (model loading, shutdown)."""
        return self._executor.submit(call)

    def _admit(self) -> None:
        with self._lock:
            if self._closed:
                raise RateLimited(f"Provider '{self._name}' is shutting down.", retry_after=1.0)
            if self._admitted >= self._capacity:
                retry_after = max(1.0, math.ceil(self._mean_seconds * self._admitted / self._capacity))
                raise RateLimited(
                    f"Provider '{self._name}' is busy: {self._admitted} requests are running or queued.",
                    retry_after=retry_after,
                )
            self._admitted += 1

    def _release(self, _: object) -> None:
        with self._lock:
            self._admitted -= 1

    def _observe(self, seconds: float) -> None:
        with self._lock:
            self._mean_seconds += _SMOOTHING * (seconds - self._mean_seconds)

    async def stream(
        self, job: Job[Result], *, deadline: float | None = None
    ) -> AsyncIterator[str | Finished[Result]]:
        """Each text the job emits, then `Finished(result)`; the job's exception is raised here.

        Past `deadline` (a `time.monotonic()` instant) the job is stopped and `RequestTimeout` raised.
        """
        self._admit()
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[str | Finished[Result] | _Failed] = asyncio.Queue()
        cancelled = threading.Event()

        def put(item: str | Finished[Result] | _Failed) -> None:
            try:
                loop.call_soon_threadsafe(items.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening
                cancelled.set()

        def work() -> None:
            if cancelled.is_set():
                return
            started = time.monotonic()
            try:
                put(Finished(job(put, cancelled)))
            except BaseException as error:  # delivered to the awaiting side, which re-raises it
                put(_Failed(error))
            finally:
                self._observe(time.monotonic() - started)

        self._live.add(cancelled)
        try:
            future = self._executor.submit(work)
        except RuntimeError:  # shut down between admission and submission
            self._release(None)
            self._live.discard(cancelled)
            raise RateLimited(f"Provider '{self._name}' is shutting down.", retry_after=1.0) from None
        future.add_done_callback(self._release)
        try:
            while True:
                if deadline is None:
                    item = await items.get()
                else:
                    item = await _get_before(items, deadline, self._name)
                if isinstance(item, _Failed):
                    raise item.error
                yield item
                if isinstance(item, Finished):
                    return
        finally:
            cancelled.set()
            future.cancel()
            self._live.discard(cancelled)

    async def close(self, finalizer: Callable[[], None] | None = None) -> None:
        """Stop every job, run `finalizer` on the worker thread after them, and end the thread."""
        with self._lock:
            self._closed = True
        for cancelled in list(self._live):
            cancelled.set()
        last = self._executor.submit(finalizer or (lambda: None))
        self._executor.shutdown(wait=False)
        await asyncio.wrap_future(last)


async def _get_before(items: asyncio.Queue[Any], deadline: float, name: str) -> Any:
    remaining = deadline - time.monotonic()
    try:
        if remaining <= 0:
            raise TimeoutError
        async with asyncio.timeout(remaining):
            return await items.get()
    except TimeoutError:
        raise RequestTimeout(f"Provider '{name}' did not finish before the request deadline.") from None
