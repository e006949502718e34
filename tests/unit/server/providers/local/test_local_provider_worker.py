"""InferenceWorker: one job at a time on its own thread, a bounded line, cancellation and deadlines."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import pytest

from server.errors import InvalidRequest, RateLimited, RequestTimeout
from server.providers.local.worker import Emit, Finished, InferenceWorker


async def collect(stream: AsyncIterator[object]) -> list[object]:
    return [item async for item in stream]


async def wait_until(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


class Blocking:
    """A job that emits "started", then waits for `release` (or for cancellation), then returns."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.saw_cancel = threading.Event()
        self.ran = False
        self.thread: str | None = None

    def __call__(self, emit: Emit, cancelled: threading.Event) -> str:
        self.ran = True
        self.thread = threading.current_thread().name
        self.started.set()
        emit("started")
        while not self.release.wait(0.01):
            if cancelled.is_set():
                self.saw_cancel.set()
                return "cancelled"
        return "done"


async def test_emitted_text_arrives_in_order_then_the_result() -> None:
    worker = InferenceWorker("t", waiting=0)

    def job(emit: Emit, cancelled: threading.Event) -> int:
        for piece in ("a", "b", "c"):
            emit(piece)
        return 42

    items = await collect(worker.stream(job))
    assert items == ["a", "b", "c", Finished(42)]
    await worker.close()


async def test_jobs_run_on_the_worker_thread_not_the_loop() -> None:
    worker = InferenceWorker("named", waiting=0)
    job = Blocking()
    job.release.set()
    await collect(worker.stream(job))
    assert job.thread is not None and job.thread.startswith("siraya-local-named")
    await worker.close()


async def test_the_loop_keeps_running_while_a_job_blocks_its_thread() -> None:
    worker = InferenceWorker("t", waiting=0)
    job = Blocking()
    stream = worker.stream(job)
    assert await stream.__anext__() == "started"
    ticks = 0
    for _ in range(5):
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks == 5 and not job.release.is_set()
    job.release.set()
    assert await collect(stream) == [Finished("done")]
    await worker.close()


async def test_a_job_error_is_raised_to_the_consumer() -> None:
    worker = InferenceWorker("t", waiting=0)

    def job(emit: Emit, cancelled: threading.Event) -> None:
        raise InvalidRequest("bad prompt", param="messages")

    with pytest.raises(InvalidRequest, match="bad prompt"):
        await collect(worker.stream(job))
    await wait_until(lambda: worker.admitted == 0)
    await worker.close()


async def test_a_full_line_is_refused_with_retry_after_and_frees_up_again() -> None:
    worker = InferenceWorker("busy", waiting=1)
    first, second = Blocking(), Blocking()
    running = worker.stream(first)
    assert await running.__anext__() == "started"
    queued = asyncio.ensure_future(collect(worker.stream(second)))
    await wait_until(lambda: worker.admitted == 2)
    with pytest.raises(RateLimited) as refused:
        await collect(worker.stream(Blocking()))
    assert refused.value.retry_after is not None and refused.value.retry_after >= 1
    assert "busy" in refused.value.message
    first.release.set()
    second.release.set()
    assert await collect(running) == [Finished("done")]
    assert await queued == ["started", Finished("done")]
    # The slot frees when the thread lets go of the job, a moment after its result is delivered.
    await wait_until(lambda: worker.admitted == 0)
    await worker.close()


async def test_a_consumer_that_leaves_stops_the_running_job() -> None:
    worker = InferenceWorker("t", waiting=0)
    job = Blocking()
    stream = worker.stream(job)
    assert await stream.__anext__() == "started"
    await stream.aclose()
    await wait_until(job.saw_cancel.is_set)
    await wait_until(lambda: worker.admitted == 0)
    await worker.close()


async def test_a_cancelled_waiter_never_runs() -> None:
    worker = InferenceWorker("t", waiting=1)
    first, second = Blocking(), Blocking()
    running = worker.stream(first)
    assert await running.__anext__() == "started"
    waiter = asyncio.ensure_future(collect(worker.stream(second)))
    await wait_until(lambda: worker.admitted == 2)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await wait_until(lambda: worker.admitted == 1)
    first.release.set()
    await collect(running)
    assert not second.ran
    await worker.close()


async def test_a_passed_deadline_stops_the_job_with_a_timeout() -> None:
    worker = InferenceWorker("slow", waiting=0)
    job = Blocking()
    with pytest.raises(RequestTimeout, match="slow"):
        await collect(worker.stream(job, deadline=time.monotonic() + 0.2))
    await wait_until(job.saw_cancel.is_set)
    await worker.close()


async def test_close_stops_running_jobs_then_runs_the_finalizer_on_the_thread() -> None:
    worker = InferenceWorker("t", waiting=0)
    job = Blocking()
    stream = worker.stream(job)
    assert await stream.__anext__() == "started"
    finalized: list[str] = []
    await worker.close(lambda: finalized.append(threading.current_thread().name))
    assert job.saw_cancel.is_set()
    assert finalized and finalized[0].startswith("siraya-local-t")
    with pytest.raises(RateLimited):
        await collect(worker.stream(Blocking()))
