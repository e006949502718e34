"""Background responses (`background: true`): answered at once as queued, run by a task, polled with GET.

The task runs the same stream pipeline as any streamed response (admission, routing, settlement,
ledger); its events go to the store and to whoever watches (`stream: true` on create, or
`GET ?stream=true&starting_after=N`) instead of one client. Its record moves queued -> in_progress
(as its first upstream attempt starts, with the credit reservation it holds) -> completed, incomplete or
failed; a cancel moves it to cancelled, and each move is one conditional update, so a cancel and a
completion racing each other cannot both win.

A process that dies leaves its records queued or in progress. Each process renews the leases of
the responses it runs every `lease_seconds`, and sweeps for records whose lease ran out (three
periods without renewal): those are marked failed with an error the client can read, and their
credit reservation is released. The same sweep deletes responses past `retention_days`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

from server.accounts.keys import KeyRecord
from server.accounts.store import ACTIVE_RESPONSE_STATES, StoredResponse
from server.errors import GatewayError, InternalError, InvalidRequest, UpstreamError
from server.providers.base import RequestContext
from server.providers.responses_envelope import RESPONSE_ERROR_CODES, response_envelope
from server.stored_responses import TERMINAL_EVENTS, ResponseState, Turn, stored_response
from siraya.router.v1 import responses_pb2

__all__ = ["BackgroundResponses", "Release", "Runner"]

logger = logging.getLogger("siraya.responses")

# Runs a turn through the stream pipeline: (turn, key, ctx, awaited as each attempt starts) -> events.
Runner = Callable[
    [Turn, KeyRecord, RequestContext, Callable[[], Awaitable[None]]],
    AsyncIterator[responses_pb2.ResponseStreamEvent],
]
# Releases a credit reservation: (key id, reservation id) -> whether one was open.
Release = Callable[[str, str], Awaitable[bool]]

LEASE_PERIODS = 3
# How long a finished response's events stay here for a late `GET ?stream=true`.
LIVE_KEEP_SECONDS = 60.0
# How often a watcher polls the store for a response another process runs.
WATCH_POLL_SECONDS = 0.25
_TERMINAL_EVENT = {
    "completed": "response.completed",
    "incomplete": "response.incomplete",
    "failed": "response.failed",
}
RETENTION_SWEEP_SECONDS = 3600.0
ORPHANED = (
    "The gateway stopped while this background response was running, so it did not finish."
    " Create the response again."
)
STOPPED = "The gateway was shut down before this background response finished. Create the response again."


class BackgroundResponses:
    def __init__(
        self,
        state: ResponseState,
        *,
        lease_seconds: float,
        retention_days: float,
        release: Release | None = None,
    ) -> None:
        self.state = state
        self.lease_seconds = lease_seconds
        self.retention_days = retention_days
        self._release = release
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancelled: set[str] = set()
        # The events of the responses this process runs (and ran in the last minute).
        self._live: dict[str, _Live] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._last_retention = 0.0

    def _lease(self) -> float:
        return time.time() + LEASE_PERIODS * self.lease_seconds

    # creating and running

    async def create(
        self, turn: Turn, key: KeyRecord, ctx: RequestContext, run: Runner
    ) -> responses_pb2.Response:
        """Store the turn as queued, start its task, and answer with the queued response."""
        queued = response_envelope(turn.params, turn.id, int(turn.created_at), turn.params.model, "queued")
        turn.stamp(queued)
        await self.state.store.insert_response(turn.record(queued, lease_until=self._lease()))
        # The task outlives the request: no deadline, no headers to send, its own outcome.
        task_ctx = RequestContext(
            request_id=ctx.request_id,
            key_id=key.id,
            client_request_id=ctx.client_request_id,
            forward_headers=dict(ctx.forward_headers),
        )
        self._live[turn.id] = _Live(key.id)
        task = asyncio.get_running_loop().create_task(
            self._run(turn, key, task_ctx, run, queued), name=f"background-{turn.id}"
        )
        self._tasks[turn.id] = task
        return queued

    async def _run(
        self,
        turn: Turn,
        key: KeyRecord,
        ctx: RequestContext,
        run: Runner,
        queued: responses_pb2.Response,
    ) -> None:
        store = self.state.store
        live = self._live[turn.id]
        started = finished = False
        upstream_id: str | None = None

        async def on_start() -> None:
            # Admitted (its reservation is known) and calling the upstream: in progress.
            nonlocal started
            if started:
                return
            started = True
            running = responses_pb2.Response()
            running.CopyFrom(queued)
            running.status = "in_progress"
            record = turn.record(running, reservation_id=ctx.reservation_id, lease_until=self._lease())
            await store.update_response(record, ("queued",))

        try:
            async for event in run(turn, key, ctx, on_start):
                if event.HasField("response"):
                    upstream_id = turn.stamp(event.response) or upstream_id
                    if event.type in TERMINAL_EVENTS:
                        # Stored before it is sent: a client that saw it can chain on it at once.
                        finished = True
                        final = turn.record(event.response, upstream_id=turn.upstream(upstream_id))
                        await store.update_response(final, ACTIVE_RESPONSE_STATES)
                live.push(event)
            if not finished:
                raise UpstreamError("The upstream's stream ended before the response was complete.")
        except asyncio.CancelledError:
            live.finish(None)
            if turn.id not in self._cancelled:
                await asyncio.shield(self._fail(turn, queued, "server_error", STOPPED))
            raise
        except GatewayError as error:
            code = error.code if error.code in RESPONSE_ERROR_CODES else "server_error"
            await self._fail(turn, queued, code, error.message)
            live.finish(error)
        except Exception:
            logger.exception("background response %s failed", turn.id)
            await self._fail(turn, queued, "server_error", "The gateway failed to process the request.")
            live.finish(InternalError("The gateway failed to process the request."))
        else:
            live.finish(None)
        finally:
            self._tasks.pop(turn.id, None)
            self._cancelled.discard(turn.id)
            asyncio.get_running_loop().call_later(LIVE_KEEP_SECONDS, self._live.pop, turn.id, None)

    async def watch(
        self, response_id: str, key: KeyRecord, starting_after: int | None
    ) -> AsyncIterator[responses_pb2.ResponseStreamEvent]:
        """A background response's events after `starting_after`, live until it ends.

        The events are kept by the process that runs the response (and for a minute after). Any
        other process - or a watcher who comes later - waits for the stored response to end and
        gets its final event only.
        """
        live = self._live.get(response_id)
        if live is not None and live.key_id == key.id:
            async for event in live.follow(starting_after):
                yield event
            return
        record = await self.state.record(response_id, key)
        if not record.background:
            raise InvalidRequest(
                "Only responses created with background=true can be streamed again.", param="stream"
            )
        while record.status in ACTIVE_RESPONSE_STATES:
            await asyncio.sleep(WATCH_POLL_SECONDS)
            record = await self.state.record(response_id, key)
        kind = _TERMINAL_EVENT.get(record.status)
        if kind is not None:
            event = responses_pb2.ResponseStreamEvent(
                type=kind, sequence_number=0 if starting_after is None else starting_after + 1
            )
            event.response.CopyFrom(stored_response(record))
            yield event

    async def _fail(self, turn: Turn, queued: responses_pb2.Response, code: str, message: str) -> None:
        failed = responses_pb2.Response()
        failed.CopyFrom(queued)
        failed.status = "failed"
        failed.error.code = code
        failed.error.message = message
        await self.state.store.update_response(turn.record(failed), ACTIVE_RESPONSE_STATES)

    async def cancel(self, response_id: str, key: KeyRecord) -> responses_pb2.Response:
        """Cancel a background response; one that already ended is answered as it is."""
        record = await self.state.record(response_id, key)
        if not record.background:
            raise InvalidRequest(
                "Only responses created with background=true can be cancelled.", param="response_id"
            )
        response = stored_response(record)
        if record.status not in ACTIVE_RESPONSE_STATES:
            return response
        response.status = "cancelled"
        cancelled = _replaced(record, response, lease_until=None)
        if await self.state.store.update_response(cancelled, ACTIVE_RESPONSE_STATES):
            task = self._tasks.get(response_id)
            if task is not None:
                self._cancelled.add(response_id)
                task.cancel()
            return response
        return await self.state.get(response_id, key)  # it ended meanwhile

    # the sweep: leases, orphans, retention

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="responses-sweep")

    async def _sweep(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except Exception:
                logger.exception("stored responses sweep failed")
            await asyncio.sleep(self.lease_seconds)

    async def sweep_once(self) -> None:
        store = self.state.store
        now = time.time()
        if self._tasks:
            await store.renew_response_leases(list(self._tasks), self._lease())
            await self._stop_cancelled_elsewhere()
        for record in await store.expired_responses(now):
            if record.id in self._tasks:
                continue
            await self._fail_orphan(record)
        if self.retention_days and now - self._last_retention >= RETENTION_SWEEP_SECONDS:
            self._last_retention = now
            deleted = await store.delete_responses_before(now - self.retention_days * 86400)
            if deleted:
                logger.info("deleted %d stored responses past their retention", deleted)

    async def _stop_cancelled_elsewhere(self) -> None:
        """A cancel another process received reaches this one's task here (the record says so)."""
        for response_id, task in list(self._tasks.items()):
            live = self._live.get(response_id)
            if live is None:
                continue
            record = await self.state.store.get_response(response_id, live.key_id)
            if record is not None and record.status not in ACTIVE_RESPONSE_STATES:
                self._cancelled.add(response_id)
                task.cancel()

    async def _fail_orphan(self, record: StoredResponse) -> None:
        response = stored_response(record)
        response.status = "failed"
        response.error.code = "server_error"
        response.error.message = ORPHANED
        if not await self.state.store.update_response(
            _replaced(record, response, lease_until=None), ACTIVE_RESPONSE_STATES
        ):
            return
        logger.warning("background response %s was orphaned by a stopped gateway; marked failed", record.id)
        if record.reservation_id is not None and self._release is not None:
            await self._release(record.key_id, record.reservation_id)

    async def close(self) -> None:
        """Stop the sweep, and the running responses (each is marked failed as it stops)."""
        tasks = [task for task in (self._sweeper, *self._tasks.values()) if task is not None]
        self._sweeper = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class _Live:
    """The events of one running background response, for everyone who watches it."""

    __slots__ = ("key_id", "events", "done", "error", "_changed")

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        self.events: list[responses_pb2.ResponseStreamEvent] = []
        self.done = False
        self.error: GatewayError | None = None
        self._changed = asyncio.Event()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def push(self, event: responses_pb2.ResponseStreamEvent) -> None:
        self.events.append(event)
        self._wake()

    def finish(self, error: GatewayError | None) -> None:
        self.done, self.error = True, error
        self._wake()

    async def follow(self, after: int | None) -> AsyncIterator[responses_pb2.ResponseStreamEvent]:
        index = 0
        while True:
            changed = self._changed
            while index < len(self.events):
                event = self.events[index]
                index += 1
                if after is None or event.sequence_number > after:
                    yield event
            if self.done:
                if self.error is not None:
                    raise self.error
                return
            await changed.wait()


def _replaced(record: StoredResponse, response: responses_pb2.Response, **changes: object) -> StoredResponse:
    return replace(
        record,
        status=response.status,
        response=response.SerializeToString(),
        **changes,  # type: ignore[arg-type]
    )
