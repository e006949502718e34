"""Background responses (`background: true`): answered at once as queued, run by a task, polled with GET.

The task runs the same pipeline as any response (admission, routing, settlement, ledger); only its
reply goes to the store instead of the client. Its record moves queued -> in_progress (when the
first upstream attempt starts, with the credit reservation it holds) -> completed, incomplete or
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
from collections.abc import Awaitable, Callable
from dataclasses import replace

from server.accounts.keys import KeyRecord
from server.accounts.store import ACTIVE_RESPONSE_STATES, StoredResponse
from server.errors import GatewayError, InvalidRequest
from server.providers.base import RequestContext
from server.providers.responses_envelope import RESPONSE_ERROR_CODES, response_envelope
from server.stored_responses import ResponseState, Turn, stored_response
from siraya.router.v1 import responses_pb2

__all__ = ["BackgroundResponses", "Release", "Runner"]

logger = logging.getLogger("siraya.responses")

# Runs a response through the pipeline: (params, key, ctx, called at each attempt's start).
Runner = Callable[
    [responses_pb2.ResponseParams, KeyRecord, RequestContext, Callable[[], Awaitable[None]]],
    Awaitable[responses_pb2.Response],
]
# Releases a credit reservation: (key id, reservation id) -> whether one was open.
Release = Callable[[str, str], Awaitable[bool]]

LEASE_PERIODS = 3
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
        started = False

        async def on_start() -> None:
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
            response = await run(turn.params, key, ctx, on_start)
        except asyncio.CancelledError:
            if turn.id not in self._cancelled:
                await asyncio.shield(self._fail(turn, queued, "server_error", STOPPED))
            raise
        except GatewayError as error:
            code = error.code if error.code in RESPONSE_ERROR_CODES else "server_error"
            await self._fail(turn, queued, code, error.message)
        except Exception:
            logger.exception("background response %s failed", turn.id)
            await self._fail(turn, queued, "server_error", "The gateway failed to process the request.")
        else:
            upstream_id = turn.stamp(response)
            record = turn.record(response, upstream_id=upstream_id or None)
            await store.update_response(record, ACTIVE_RESPONSE_STATES)
        finally:
            self._tasks.pop(turn.id, None)
            self._cancelled.discard(turn.id)

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
        for record in await store.expired_responses(now):
            if record.id in self._tasks:
                continue
            await self._fail_orphan(record)
        if self.retention_days and now - self._last_retention >= RETENTION_SWEEP_SECONDS:
            self._last_retention = now
            deleted = await store.delete_responses_before(now - self.retention_days * 86400)
            if deleted:
                logger.info("deleted %d stored responses past their retention", deleted)

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


def _replaced(record: StoredResponse, response: responses_pb2.Response, **changes: object) -> StoredResponse:
    return replace(
        record,
        status=response.status,
        response=response.SerializeToString(),
        **changes,  # type: ignore[arg-type]
    )
