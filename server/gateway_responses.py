"""The gateway's Responses endpoints: a response, or its events, on the one chat path; stored
responses, `previous_response_id` and background mode through `server/stored_responses.py` and
`server/background_responses.py`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from server.accounts.keys import KeyRecord
from server.gateway_pipeline import Pipeline
from server.gateway_usage import response_answer_consumption, response_demand
from server.providers.base import RequestContext
from server.response_cache.stage import ProtoForm
from server.routing.route import Route
from server.stored_responses import Turn
from server.stream_items import RESPONSE_EVENTS, Result
from siraya.router.codec.bounds import check_response
from siraya.router.v1 import responses_pb2

_RESPONSE = ProtoForm(responses_pb2.Response)


class ResponseEndpoints(Pipeline):
    async def respond(
        self, params: responses_pb2.ResponseParams, key: KeyRecord, ctx: RequestContext
    ) -> responses_pb2.Response:
        check_response(params)
        # Stored responses, previous_response_id and background mode: server/stored_responses.py.
        turn = None if self.state is None else await self.state.begin(params, key)
        if turn is None:
            return await self._respond(params, key, ctx)
        if turn.background and self.background is not None:
            self._entry(params.model, "chat", key)  # an unknown or forbidden model fails the create
            return await self.background.create(turn, key, ctx, self._turn_events)
        response = await self._respond(turn.params, key, ctx, turn.params_for)
        await self.state.keep(turn, response)  # type: ignore[union-attr]
        return response

    async def _respond(
        self,
        params: responses_pb2.ResponseParams,
        key: KeyRecord,
        ctx: RequestContext,
        params_for: Callable[[Route], responses_pb2.ResponseParams] | None = None,
    ) -> responses_pb2.Response:
        """`params_for` may give each attempt its own request (a native upstream's own chain)."""

        def call(route: Route) -> Awaitable[responses_pb2.Response]:
            sent = params if params_for is None else params_for(route)
            return route.provider.respond(sent, route.deployment.upstream_model, ctx)

        response, route, cost = await self._unary(
            "chat",
            params.model,
            params.routing,
            response_demand(params),
            key,
            ctx,
            call,
            response_answer_consumption,
            _RESPONSE,
        )
        response.model = route.entry.id
        response.provider = route.deployment.provider
        if cost is not None and response.HasField("usage"):
            response.usage.cost = cost
        return response

    def _response_events(
        self,
        params: responses_pb2.ResponseParams,
        key: KeyRecord,
        ctx: RequestContext,
        started: Callable[[], Awaitable[None]] | None = None,
        params_for: Callable[[Route], responses_pb2.ResponseParams] | None = None,
    ) -> AsyncIterator[responses_pb2.ResponseStreamEvent]:
        """The Responses stream pipeline; `started` is awaited as each attempt starts (admitted)."""
        check_response(params)

        def call(route: Route) -> AsyncIterator[responses_pb2.ResponseStreamEvent]:
            sent = params if params_for is None else params_for(route)
            return route.provider.stream_response(sent, route.deployment.upstream_model, ctx)

        return self._stream(
            "chat",
            params.model,
            params.routing,
            response_demand(params),
            key,
            ctx,
            call if started is None else _after(started, call),
            RESPONSE_EVENTS,
        )

    async def stream_response(
        self, params: responses_pb2.ResponseParams, key: KeyRecord, ctx: RequestContext
    ) -> AsyncIterator[responses_pb2.ResponseStreamEvent]:
        turn = None if self.state is None else await self.state.begin(params, key)
        if turn is None or self.state is None:
            async for event in self._response_events(params, key, ctx):
                yield event
            return
        if turn.background and self.background is not None:
            self._entry(params.model, "chat", key)
            await self.background.create(turn, key, ctx, self._turn_events)
            # The client may go away: the response runs on, and GET ?stream=true picks it up.
            async for event in self.background.watch(turn.id, key, None):
                yield event
            return
        events = self._response_events(turn.params, key, ctx, None, turn.params_for)
        async for event in self.state.stream(turn, events):
            yield event

    def _turn_events(
        self, turn: Turn, key: KeyRecord, ctx: RequestContext, started: Callable[[], Awaitable[None]]
    ) -> AsyncIterator[responses_pb2.ResponseStreamEvent]:
        return self._response_events(turn.params, key, ctx, started, turn.params_for)


def _after(
    started: Callable[[], Awaitable[None]], call: Callable[[Route], AsyncIterator[Result]]
) -> Callable[[Route], AsyncIterator[Result]]:
    """`call`, with `started` awaited before each attempt (a background response's in_progress)."""

    async def called(route: Route) -> AsyncIterator[Result]:
        await started()
        async for item in call(route):
            yield item

    return called
