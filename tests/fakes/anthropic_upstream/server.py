"""The fake Anthropic upstream: an aiohttp server on loopback speaking the Messages API's wire format.

POST /v1/messages checks `x-api-key` and `anthropic-version`, validates the request's shape
strictly (`validate.py`), and answers a JSON Message or an SSE stream of `event: <type>` /
`data: {json}` frames. Errors use Anthropic's body: `{"type": "error", "error": {"type", "message"},
"request_id"}`. Every request lands in `requests`; `script` queues replies, `inject` faults.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from typing import Any

import orjson
from aiohttp import web

from ..loopback import LoopbackServer
from .control import AnthropicFault, RecordedRequest, ScriptedMessage
from .replies import message_body, plan_reply, stream_events
from .validate import RequestInvalid, validate_request

__all__ = ["FakeAnthropicUpstream"]

GARBAGE_BODY = b"<html><body>502 Bad Gateway</body></html> {not json"


def error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


def sse_frame(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class FakeAnthropicUpstream(LoopbackServer):
    """An Anthropic Messages server for tests; `base_url` is the API root (no /v1), as the SDKs take it."""

    def __init__(self, api_key: str = "sk-ant-fake-secret", *, version: str = "2023-06-01") -> None:
        super().__init__()
        self.api_key = api_key
        self.version = version
        self.requests: list[RecordedRequest] = []
        # Seconds between stream events: a slow stream a client can leave midway.
        self.event_delay = 0.0
        self._faults: list[AnthropicFault] = []
        self._scripts: deque[ScriptedMessage] = deque()
        self._counter = 0

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._messages)
        return app

    # test controls

    def inject(self, fault: AnthropicFault) -> None:
        self._faults.append(dataclasses.replace(fault))

    def script(self, reply: ScriptedMessage) -> None:
        self._scripts.append(reply)

    @property
    def last_json(self) -> Any:
        return self.requests[-1].json

    # the endpoint

    def _error(
        self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        body = error_body(error_type, message, self._request_id())
        return web.Response(
            body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
        )

    def _request_id(self) -> str:
        return f"req_fake{self._counter:04d}"

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self._counter += 1
        try:
            parsed: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append(RecordedRequest(request.method, request.path, headers, parsed, raw))

        fault = self._take_fault()
        if fault is not None and fault.hang:
            await asyncio.sleep(fault.hang)
        if fault is not None and fault.status is not None:
            if fault.garbage:
                return web.Response(status=fault.status, body=GARBAGE_BODY, content_type="text/html")
            return self._error(fault.status, fault.error_type, fault.message, fault.headers)

        key = headers.get("x-api-key")
        if not key:
            return self._error(401, "authentication_error", "x-api-key header is required")
        if key != self.api_key:
            return self._error(401, "authentication_error", "invalid x-api-key")
        if headers.get("anthropic-version") != self.version:
            return self._error(400, "invalid_request_error", "anthropic-version: header is required")
        if not headers.get("content-type", "").startswith("application/json"):
            return self._error(400, "invalid_request_error", "content-type: must be application/json")
        if parsed is None:
            return self._error(
                400, "invalid_request_error", "There was an issue with the request body: invalid JSON"
            )
        try:
            validate_request(parsed)
        except RequestInvalid as invalid:
            return self._error(400, "invalid_request_error", str(invalid))

        reply = self._scripts.popleft() if self._scripts else plan_reply(parsed)
        message_id = f"msg_fake{self._counter:04d}"
        if fault is not None and fault.garbage and not parsed.get("stream"):
            return web.Response(body=GARBAGE_BODY, content_type="application/json")
        response_headers = {"request-id": self._request_id(), **(fault.headers if fault else {})}
        if not parsed.get("stream"):
            body = message_body(reply, parsed, message_id)
            return web.Response(
                body=orjson.dumps(body), headers=response_headers, content_type="application/json"
            )
        return await self._stream(request, stream_events(reply, parsed, message_id), fault, response_headers)

    async def _stream(
        self,
        request: web.Request,
        events: list[tuple[str, dict[str, Any]]],
        fault: AnthropicFault | None,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"cache-control": "no-cache", **headers})
        response.content_type = "text/event-stream"
        response.charset = "utf-8"
        await response.prepare(request)
        for sent, (event, data) in enumerate(events):
            if fault is not None and fault.error_after_events == sent:
                error = error_body(fault.error_type, fault.message, self._request_id())
                await response.write(sse_frame("error", error))
                break
            if fault is not None and fault.cut_after_events == sent:
                break
            if fault is not None and fault.garbage and sent == 1:
                await response.write(b"event: ping\ndata: {not json\n\n")
            if sent and self.event_delay:
                await asyncio.sleep(self.event_delay)
            await response.write(sse_frame(event, data))
        await response.write_eof()
        return response

    def _take_fault(self) -> AnthropicFault | None:
        if not self._faults:
            return None
        fault = self._faults[0]
        fault.times -= 1
        if fault.times <= 0:
            self._faults.pop(0)
        return fault
