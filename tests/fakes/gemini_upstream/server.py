"""The fake Gemini API: an aiohttp server on loopback speaking the v1beta REST wire format.

Routes (under /v1beta): `models/<m>:generateContent`, `models/<m>:streamGenerateContent?alt=sse`,
`models/<m>:batchEmbedContents`, `models/<m>:predict` (Imagen), `models/<m>:predictLongRunning`
(Veo), `GET models/<m>/operations/<id>` (each poll advances the job; done on the `video_polls`-th)
and `GET files/<id>:download?alt=media`, which redirects to the bytes like the real API. Outside
the API, `GET /media/<name>` serves a PNG, an image host on a loopback address for image_url tests.

Like the real API it checks `x-goog-api-key` (missing: 403 PERMISSION_DENIED; wrong: 400
INVALID_ARGUMENT with ErrorInfo API_KEY_INVALID), answers errors as pretty-printed google.rpc JSON,
and frames SSE events as `data: <json>\\r\\n\\r\\n`. Every request body is checked against the
API's shape rules (see `validate.py`) and refused with a 400 when it breaks one. A `gemini-3*` model
also checks thought signatures as Gemini 3 does: in the current turn (since the last user text),
each model step's first functionCall must carry back the thoughtSignature this fake gave it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections import deque
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from tests.fakes.openai_upstream.media import TINY_PNG
from tests.fakes.openai_upstream.videos import fake_mp4

from ..loopback import LoopbackServer
from . import validate
from .control import GeminiFault, GeminiReply, RecordedRequest
from .replies import default_plan, response_body, scripted_plan, stream_events

__all__ = ["FakeGeminiUpstream"]

_STATUS_CODES = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
_RECORD = web.RequestKey("record", RecordedRequest)
_FAULT = web.RequestKey("fault", GeminiFault)
_EMBED_DIMENSIONS = 8
_LRO_RESPONSE = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"


def _pretty(value: Any) -> bytes:
    # Google pretty-prints unary JSON bodies with two-space indents.
    return json.dumps(value, indent=2).encode()


def google_error(
    status: str, message: str, *, retry_delay: str | None = None, reasons: tuple[str, ...] = ()
) -> web.Response:
    error: dict[str, Any] = {"code": _STATUS_CODES.get(status, 500), "message": message, "status": status}
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }
        for reason in reasons
    ]
    if retry_delay:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
    if details:
        error["details"] = details
    return web.Response(
        status=error["code"], body=_pretty({"error": error}), content_type="application/json", charset="UTF-8"
    )


class _Rejected(Exception):
    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


@dataclasses.dataclass
class _Operation:
    name: str
    polls_left: int
    file_id: str
    failed: bool = False


class FakeGeminiUpstream(LoopbackServer):
    """A Gemini API for tests; `script` queues replies, `inject` queues faults, `requests` records all."""

    api_prefix = "/v1beta"

    def __init__(self, api_key: str = "AIza-fake-gemini-key", *, video_polls: int = 2) -> None:
        super().__init__()
        self.api_key = api_key
        self.video_polls = video_polls
        self.requests: list[RecordedRequest] = []
        # Seconds between stream events: a slow stream a client can leave midway.
        self.event_delay = 0.0
        self.operations: dict[str, _Operation] = {}
        self._faults: list[GeminiFault] = []
        self._scripts: deque[GeminiReply] = deque()
        self._counter = 0
        # Every thoughtSignature this fake put on a function call: what a Gemini 3 model accepts back.
        self.issued_signatures: set[str] = set()

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1beta/models/{call}", self._model_call)
        app.router.add_get("/v1beta/models/{model}/operations/{op}", self._operation)
        app.router.add_get("/v1beta/files/{call}", self._file)
        app.router.add_get("/blobs/{file_id}", self._blob)
        # Not the Gemini API: an image host a client's image_url can point at (a private address).
        app.router.add_get("/media/{name}", self._media)
        return app

    # -- test controls -------------------------------------------------------------------------

    def script(self, reply: GeminiReply) -> None:
        self._scripts.append(reply)

    def inject(self, fault: GeminiFault) -> None:
        self._faults.append(dataclasses.replace(fault))

    def clear_faults(self) -> None:
        self._faults.clear()

    def requests_to(self, suffix: str) -> list[RecordedRequest]:
        return [record for record in self.requests if record.path.endswith(suffix)]

    def _next_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter:04d}"

    # -- plumbing ------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        record = RecordedRequest(
            request.method,
            request.path,
            dict(request.query),
            {k.lower(): v for k, v in request.headers.items()},
            parsed,
            raw,
        )
        self.requests.append(record)
        request[_RECORD] = record
        if not request.path.startswith(("/blobs/", "/media/")):
            key = request.headers.get("x-goog-api-key")
            if not key:
                return google_error(
                    "PERMISSION_DENIED",
                    "Method doesn't allow unregistered callers (callers without established identity). "
                    "Please use API Key or other form of API consumer identity to call this API.",
                )
            if key != self.api_key:
                return google_error(
                    "INVALID_ARGUMENT",
                    "API key not valid. Please pass a valid API key.",
                    reasons=("API_KEY_INVALID",),
                )
        fault = self._take_fault(request.path)
        if fault is not None:
            request[_FAULT] = fault
            if fault.hang:
                await asyncio.sleep(fault.hang)
            if fault.status is not None:
                response = google_error(
                    fault.grpc_status, fault.message, retry_delay=fault.retry_delay, reasons=fault.reasons
                )
                response.headers.update(fault.headers)
                return response
            if fault.garbage:
                return web.Response(body=b"<html>upstream hiccup</html>", content_type="text/html")
        if raw and parsed is None:
            return google_error("INVALID_ARGUMENT", "Invalid JSON payload received. Unexpected token.")
        try:
            return await handler(request)
        except _Rejected as rejected:
            return rejected.response
        except validate.Invalid as invalid:
            return google_error("INVALID_ARGUMENT", str(invalid))
        except web.HTTPNotFound:
            return google_error("NOT_FOUND", f"Method not found: {request.path}")

    def _take_fault(self, path: str) -> GeminiFault | None:
        for fault in self._faults:
            if fault.matches(path):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # -- models/<m>:<method> -------------------------------------------------------------------

    async def _model_call(self, request: web.Request) -> web.StreamResponse:
        model, colon, method = request.match_info["call"].partition(":")
        if not colon:
            raise web.HTTPNotFound()
        if model.startswith("missing"):
            raise _Rejected(google_error("NOT_FOUND", f"models/{model} is not found for API version v1beta."))
        body = request[_RECORD].json
        if method == "generateContent":
            return self._generate(body, model)
        if method == "streamGenerateContent":
            if request.query.get("alt") != "sse":
                raise _Rejected(google_error("INVALID_ARGUMENT", "This fake only streams with alt=sse."))
            return await self._stream(request, body, model)
        if method == "batchEmbedContents":
            return self._embed(body, model)
        if method == "predict":
            return self._predict(body)
        if method == "predictLongRunning":
            return self._predict_long_running(body, model)
        raise web.HTTPNotFound()

    def _plan(self, body: Any, model: str) -> Any:
        validate.check_generate_content(body)
        if model.startswith("gemini-3"):
            self._check_thought_signatures(body)
        plan = scripted_plan(self._scripts.popleft(), body) if self._scripts else default_plan(body)
        self.issued_signatures.update(call.thought_signature for call in plan.calls if call.thought_signature)
        return plan

    def _check_thought_signatures(self, body: Any) -> None:
        contents = body.get("contents") or []
        turn_start = 0
        for index, content in enumerate(contents):
            if content.get("role", "user") == "user" and any("text" in p for p in content.get("parts") or []):
                turn_start = index
        for index, content in enumerate(contents[turn_start:], start=turn_start):
            if content.get("role") != "model":
                continue
            parts = content.get("parts") or []
            first = next((p for p in parts if "functionCall" in p), None)
            if first is None:
                continue
            signature = first.get("thoughtSignature")
            name = first["functionCall"].get("name")
            if not signature:
                raise _Rejected(
                    google_error(
                        "INVALID_ARGUMENT",
                        "Function call is missing a thought_signature in functionCall parts. This is required"
                        f" for tools to work correctly. Additional data, function call `{name}`, position"
                        f" {index + 1}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures"
                        " for more details.",
                    )
                )
            if signature not in self.issued_signatures:
                raise _Rejected(
                    google_error("INVALID_ARGUMENT", f"Thought signature is not valid (contents[{index}]).")
                )

    def _generate(self, body: Any, model: str) -> web.Response:
        config = body.get("generationConfig") or {} if isinstance(body, dict) else {}
        if "IMAGE" in (config.get("responseModalities") or []):
            validate.check_generate_content(body)
            return self._image_reply(model)
        plan = self._plan(body, model)
        return web.Response(
            body=_pretty(response_body(plan, model, self._next_id("resp"))), content_type="application/json"
        )

    async def _stream(self, request: web.Request, body: Any, model: str) -> web.StreamResponse:
        events = stream_events(self._plan(body, model), model, self._next_id("resp"))
        fault = request.get(_FAULT)
        response = web.StreamResponse(headers={"Content-Disposition": "attachment"})
        response.content_type = "text/event-stream"
        await response.prepare(request)
        for sent, event in enumerate(events):
            if fault is not None and fault.error_after_events == sent:
                error = {"error": {"code": 500, "message": fault.message, "status": fault.grpc_status}}
                await response.write(b"data: " + json.dumps(error).encode() + b"\r\n\r\n")
                break
            if fault is not None and fault.cut_after_events == sent:
                break
            if sent and self.event_delay:
                await asyncio.sleep(self.event_delay)
            # Google separates keys with ": " but items with "," in its SSE events.
            await response.write(b"data: " + json.dumps(event, separators=(",", ": ")).encode() + b"\r\n\r\n")
        await response.write_eof()
        return response

    def _image_reply(self, model: str) -> web.Response:
        import base64

        body = {
            "candidates": [
                {
                    "content": {
                        "parts": [
                            {"text": "Here is your picture."},
                            {
                                "inlineData": {
                                    "mimeType": "image/png",
                                    "data": base64.b64encode(TINY_PNG).decode(),
                                }
                            },
                        ],
                        "role": "model",
                    },
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1290, "totalTokenCount": 1295},
            "modelVersion": model,
            "responseId": self._next_id("resp"),
        }
        return web.Response(body=_pretty(body), content_type="application/json")

    def _embed(self, body: Any, model: str) -> web.Response:
        validate.check_embed(body, model)
        embeddings = []
        for request in body["requests"]:
            text = request["content"]["parts"][0]["text"]
            digest = hashlib.sha256(text.encode()).digest()
            size = request.get("outputDimensionality", _EMBED_DIMENSIONS)
            embeddings.append({"values": [round(digest[i % 32] / 255 - 0.5, 6) for i in range(size)]})
        return web.Response(body=_pretty({"embeddings": embeddings}), content_type="application/json")

    def _predict(self, body: Any) -> web.Response:
        import base64

        validate.check_predict(body)
        params = body.get("parameters") or {}
        mime = (params.get("outputOptions") or {}).get("mimeType", "image/png")
        image = base64.b64encode(TINY_PNG).decode()
        predictions = [
            {"mimeType": mime, "bytesBase64Encoded": image} for _ in range(params.get("sampleCount", 1))
        ]
        return web.Response(body=_pretty({"predictions": predictions}), content_type="application/json")

    def _predict_long_running(self, body: Any, model: str) -> web.Response:
        validate.check_predict_long_running(body)
        name = f"models/{model}/operations/{self._next_id('op')}"
        failed = "fail" in body["instances"][0]["prompt"]
        self.operations[name] = _Operation(name, self.video_polls, self._next_id("file"), failed)
        return web.Response(body=_pretty({"name": name}), content_type="application/json")

    # -- operations and files ------------------------------------------------------------------

    async def _operation(self, request: web.Request) -> web.Response:
        name = f"models/{request.match_info['model']}/operations/{request.match_info['op']}"
        operation = self.operations.get(name)
        if operation is None:
            raise _Rejected(google_error("NOT_FOUND", f"Operation {name} not found."))
        operation.polls_left -= 1
        if operation.polls_left > 0:
            return web.Response(body=_pretty({"name": name}), content_type="application/json")
        if operation.failed:
            done: dict[str, Any] = {
                "name": name,
                "done": True,
                "error": {"code": 3, "message": "The prompt could not be rendered."},
            }
        else:
            uri = f"{self.base_url}/files/{operation.file_id}:download?alt=media"
            done = {
                "name": name,
                "done": True,
                "response": {
                    "@type": _LRO_RESPONSE,
                    "generateVideoResponse": {"generatedSamples": [{"video": {"uri": uri}}]},
                },
            }
        return web.Response(body=_pretty(done), content_type="application/json")

    async def _file(self, request: web.Request) -> web.Response:
        file_id, colon, method = request.match_info["call"].partition(":")
        if method != "download" or request.query.get("alt") != "media":
            raise web.HTTPNotFound()
        raise web.HTTPFound(f"/blobs/{file_id}")

    async def _media(self, request: web.Request) -> web.Response:
        return web.Response(body=TINY_PNG, content_type="image/png")

    async def _blob(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        return web.Response(body=fake_mp4(file_id), content_type="video/mp4")
