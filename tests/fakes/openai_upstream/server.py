"""The fake OpenAI upstream: an aiohttp server on loopback that records, authenticates and fails on cue."""

from __future__ import annotations

import asyncio
import dataclasses
import email.policy
import re
import time
from collections import deque
from email.parser import BytesParser
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from ..loopback import LoopbackServer
from .chat import (
    ChatMeta,
    chat_completion,
    chat_conversation,
    chat_stream_chunks,
    chat_usage,
    wants_thinking,
)
from .control import Fault, RecordedFile, RecordedRequest, ScriptedReply
from .media import DEFAULT_DIMENSIONS, TINY_PNG, embedding_inputs, embeddings_body, images_body
from .replies import plan_reply
from .responses import (
    ResponseMeta,
    output_items,
    response_conversation,
    response_events,
    response_object,
    response_status,
)
from .videos import VideoJob, fake_mp4
from .wire import (
    DONE,
    GARBAGE_BODY,
    GARBAGE_EVENT,
    error_response,
    json_response,
    mask_key,
    sse_data,
    sse_event,
)

__all__ = ["FakeOpenAIUpstream"]

MODELS = (
    ("gpt-4o-mini", 1721172741),
    ("gpt-4o", 1715367049),
    ("text-embedding-3-small", 1705948997),
    ("gpt-image-1", 1745517030),
    ("sora-2", 1759708800),
)
_KEY_HELP = "You can find your API key at https://platform.openai.com/account/api-keys."
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). " + _KEY_HELP
)
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)
_RECORD = web.RequestKey("record", RecordedRequest)
# The request body schema (in OpenAI's spec) of each endpoint a strict fake checks.
_REQUEST_SCHEMAS = {
    "/v1/chat/completions": "CreateChatCompletionRequest",
    "/v1/responses": "CreateResponse",
    "/v1/embeddings": "CreateEmbeddingRequest",
}
_FAULT = web.RequestKey("fault", Fault)
_DOWNLOAD_PIECE = 64 * 1024


class _Rejected(Exception):
    """Raised by a handler to answer with an OpenAI error response."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


class FakeOpenAIUpstream(LoopbackServer):
    """An OpenAI-compatible server for end-to-end tests, byte-faithful to OpenAI's wire format.

    Replies are deterministic (see `replies.plan_reply`); `inject` queues faults and `script_chat`
    queues replies. Every request lands in `requests`. A `strict` fake refuses a chat, Responses or
    embeddings body that breaks OpenAI's request schema with OpenAI's 400, as the real API does
    (the fuzz suite sends such bodies; other tests rely on a lenient fake).
    """

    api_prefix = "/v1"

    def __init__(
        self,
        api_key: str = "sk-upstream-secret",
        *,
        native_responses: bool = True,
        chunk_delay: float = 0.0,
        reasoning_field: str | None = None,
        strict: bool = False,
    ) -> None:
        """`reasoning_field`: play a reasoning model that thinks when `reasoning_effort` asks it to,
        and sends its thinking in that field of the message and of the stream's deltas
        ("reasoning_content" as vLLM and DeepSeek do, "reasoning" as OpenRouter does)."""
        super().__init__()
        self.api_key = api_key
        self.strict = strict
        self.native_responses = native_responses
        self.chunk_delay = chunk_delay
        self.reasoning_field = reasoning_field
        self.requests: list[RecordedRequest] = []
        self.closed_early = 0
        # Requests whose client went away while a fault's `hang` held them.
        self.abandoned_hangs = 0
        self.active_streams = 0
        self.videos: dict[str, VideoJob] = {}
        self._faults: list[Fault] = []
        self._scripts: deque[ScriptedReply] = deque()
        self._ids: dict[str, int] = {}
        self._images: set[str] = set()
        self._closed_signal = asyncio.Event()
        self._stopping = False
        # Texts that differ only in case, spacing and punctuation embed alike (a stand-in for
        # similar meaning, for the semantic cache tests); off: every text its own vector.
        self.embed_loosely = False

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping = False
        await super().start()

    async def stop(self) -> None:
        self._stopping = True
        await super().stop()

    # -- test controls -------------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        # A copy, so counting down `times` never changes an object the test may reuse.
        self._faults.append(dataclasses.replace(fault))

    def script_chat(self, reply: ScriptedReply) -> None:
        self._scripts.append(reply)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [record for record in self.requests if record.path == path]

    async def wait_closed_early(self, count: int = 1, timeout: float = 5) -> None:
        """Wait until `count` streams in total have lost their client before finishing."""
        try:
            async with asyncio.timeout(timeout):
                while self.closed_early < count:
                    self._closed_signal.clear()
                    await self._closed_signal.wait()
        except TimeoutError:
            raise TimeoutError(
                f"closed_early is {self.closed_early} after {timeout}s, wanted {count}"
            ) from None

    # -- plumbing ------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.on_response_prepare.append(self._add_headers)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._get_model)
        app.router.add_post("/v1/chat/completions", self._chat)
        if self.native_responses:
            app.router.add_post("/v1/responses", self._responses)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/images/generations", self._images_generate)
        app.router.add_get("/files/{name}", self._file)
        app.router.add_post("/v1/videos", self._video_create)
        app.router.add_get("/v1/videos", self._video_list)
        app.router.add_get("/v1/videos/{video_id}", self._video_get)
        app.router.add_delete("/v1/videos/{video_id}", self._video_delete)
        app.router.add_get("/v1/videos/{video_id}/content", self._video_content)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        record = _record(request, await request.read())
        self.requests.append(record)
        request[_RECORD] = record
        fault = self._take_fault(request.path)
        if fault is not None:
            request[_FAULT] = fault
            if fault.hang:
                try:
                    await asyncio.sleep(fault.hang)
                except asyncio.CancelledError:
                    self.abandoned_hangs += 1
                    raise
            early = await self._fault_response(request, fault, _is_stream(record))
            if early is not None:
                return early
        if not request.path.startswith("/files/") and (denied := self._check_auth(request)) is not None:
            return denied
        if self.strict and (refused := _schema_refusal(request.path, record.json)) is not None:
            return refused
        try:
            return await handler(request)
        except _Rejected as rejected:
            return rejected.response
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
            return error_response(404, f"Invalid URL ({request.method} {request.path})")

    async def _add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers.setdefault("x-request-id", f"req_fake{len(self.requests)}")
        response.headers.setdefault("openai-processing-ms", "1")
        response.headers.setdefault("openai-version", "2020-10-01")
        fault = request.get(_FAULT)
        if fault is not None:
            response.headers.update(fault.headers)

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(path):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    async def _fault_response(
        self, request: web.Request, fault: Fault, streaming: bool
    ) -> web.Response | None:
        if fault.status is not None:
            if fault.garbage:
                return web.Response(status=fault.status, body=GARBAGE_BODY, content_type="text/html")
            response = error_response(fault.status, fault.message, fault.error_type, fault.error_code)
            if fault.usage is not None:
                body = orjson.loads(response.body)  # type: ignore[arg-type]
                return json_response({**body, "usage": fault.usage}, fault.status)
            return response
        if streaming:
            return None  # the stream writer applies garbage / reset / cut
        if fault.garbage:
            return web.Response(body=GARBAGE_BODY, content_type="application/json")
        if fault.reset_after_chunks is not None:
            await _abort(request)
            return web.Response()
        return None

    def _check_auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header.strip():
            return error_response(401, _NO_KEY)
        scheme, _, key = header.strip().partition(" ")
        key = key.strip()
        if scheme.lower() == "bearer" and key == self.api_key:
            return None
        message = f"Incorrect API key provided: {mask_key(key or scheme)}. {_KEY_HELP}"
        return error_response(401, message, code="invalid_api_key")

    def _new_id(self, prefix: str) -> str:
        self._ids[prefix] = self._ids.get(prefix, 0) + 1
        return f"{prefix}{self._ids[prefix]}"

    def _chunk_delay(self, request: web.Request) -> float:
        header = request.headers.get("x-fake-chunk-delay")
        return float(header) if header else self.chunk_delay

    async def _stream(self, request: web.Request, frames: list[bytes], final: bytes) -> web.StreamResponse:
        """Send SSE frames then `final`, shaped by the request's fault; count clients that leave early."""
        fault = request.get(_FAULT)
        reset_at = fault.reset_after_chunks if fault else None
        if fault and fault.garbage:
            frames = [*frames[:1], GARBAGE_EVENT, *frames[1:]]
        parts = frames if fault and fault.cut_before_done else [*frames, final]
        delay = self._chunk_delay(request)
        response = web.StreamResponse(headers={"Cache-Control": "no-cache"})
        response.content_type = "text/event-stream"
        response.charset = "utf-8"
        await response.prepare(request)
        self.active_streams += 1
        try:
            for sent, part in enumerate(parts):
                if sent == reset_at:
                    await _abort(request)
                    return response
                if sent and delay:
                    await asyncio.sleep(delay)
                await response.write(part)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            if not self._stopping:
                self.closed_early += 1
                self._closed_signal.set()
            raise
        finally:
            self.active_streams -= 1
        return response

    def _body(self, request: web.Request, *required: str) -> dict[str, Any]:
        body = request[_RECORD].json
        if not isinstance(body, dict):
            raise _Rejected(error_response(400, _BAD_JSON))
        for name in required:
            if body.get(name) in (None, ""):
                raise _missing_parameter(name)
        return body

    # -- models --------------------------------------------------------------------------------

    async def _list_models(self, request: web.Request) -> web.Response:
        return json_response({"object": "list", "data": [_model(name, created) for name, created in MODELS]})

    async def _get_model(self, request: web.Request) -> web.Response:
        name = request.match_info["model"]
        for known, created in MODELS:
            if known == name:
                return json_response(_model(known, created))
        message = f"The model `{name}` does not exist or you do not have access to it."
        return error_response(404, message, code="model_not_found")

    # -- generation ----------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = self._body(request, "model", "messages")
        scripted = self._scripts.popleft() if self._scripts else None
        conversation = chat_conversation(body)
        if self.reasoning_field:
            conversation = dataclasses.replace(conversation, think=wants_thinking(body))
        reply = plan_reply(conversation, scripted, lambda: self._new_id("call_"))
        meta = ChatMeta(id=self._new_id("chatcmpl-fake"), created=int(time.time()), model=body["model"])
        n = int(body.get("n") or 1)
        silent = scripted is not None and scripted.no_usage
        field = self.reasoning_field
        record = request[_RECORD]
        if not _is_stream(record):
            completion = chat_completion(meta, reply, n, field)
            if silent:
                del completion["usage"]
            if scripted is not None:
                _add_extras(completion, scripted)
            record.reply = orjson.dumps(completion)
            return web.Response(body=record.reply, content_type="application/json")
        include_usage = bool((body.get("stream_options") or {}).get("include_usage")) and not silent
        on_finish = scripted is not None and scripted.usage_on_finish
        chunks = chat_stream_chunks(meta, reply, n, include_usage and not on_finish, field)
        if on_finish:
            chunks[-1]["usage"] = chat_usage(
                reply.prompt_tokens, reply.completion_tokens * n, reply.reasoning_tokens * n
            )
        if scripted is not None:
            for chunk in chunks:
                _add_extras(chunk, scripted)
        frames = [sse_data(chunk) for chunk in chunks]
        record.reply = b"".join(frames) + DONE
        return await self._stream(request, frames, DONE)

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        body = self._body(request, "model")
        scripted = self._scripts.popleft() if self._scripts else None
        reply = plan_reply(response_conversation(body), scripted, lambda: self._new_id("call_"))
        meta = ResponseMeta(id=self._new_id("resp_fake"), created_at=int(time.time()), request=body)
        items = output_items(reply, self._new_id)
        if not _is_stream(request[_RECORD]):
            return json_response(response_object(meta, response_status(reply), items, reply))
        frames = [sse_event(kind, payload) for kind, payload in response_events(meta, reply, items)]
        # The Responses stream has no [DONE]; its terminal event plays that role for cut_before_done.
        return await self._stream(request, frames[:-1], frames[-1])

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = self._body(request, "model", "input")
        inputs = embedding_inputs(body["input"])
        if inputs is None:
            raise _Rejected(
                error_response(400, "'$.input' is invalid. Please check the API reference.", param="input")
            )
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise _Rejected(
                error_response(400, f"Invalid encoding_format: '{encoding}'.", param="encoding_format")
            )
        dimensions = int(body.get("dimensions") or DEFAULT_DIMENSIONS)
        if self.embed_loosely:
            inputs = [(" ".join(re.findall(r"\w+", text.lower())), count) for text, count in inputs]
        return json_response(embeddings_body(body["model"], inputs, dimensions, encoding))

    async def _images_generate(self, request: web.Request) -> web.Response:
        body = self._body(request, "prompt")
        urls = None
        if body.get("response_format") != "b64_json":
            names = [self._new_id("img-") + ".png" for _ in range(int(body.get("n") or 1))]
            self._images.update(names)
            urls = [f"http://127.0.0.1:{self.port}/files/{name}" for name in names]
        return json_response(images_body(body, int(time.time()), urls))

    async def _file(self, request: web.Request) -> web.Response:
        if request.match_info["name"] not in self._images:
            return error_response(404, "File not found.")
        return web.Response(body=TINY_PNG, content_type="image/png")

    # -- videos --------------------------------------------------------------------------------

    async def _video_create(self, request: web.Request) -> web.Response:
        record = request[_RECORD]
        fields: dict[str, Any] = record.form if record.form is not None else self._body(request)
        if not fields.get("prompt"):
            raise _missing_parameter("prompt")
        job = VideoJob(
            id=self._new_id("video_"),
            created_at=int(time.time()),
            model=str(fields.get("model") or "sora-2"),
            prompt=str(fields["prompt"]),
            seconds=str(fields.get("seconds") or "4"),
            size=str(fields.get("size") or "720x1280"),
        )
        self.videos[job.id] = job
        return json_response(job.resource())

    async def _video_list(self, request: web.Request) -> web.Response:
        data = [job.resource() for job in reversed(self.videos.values())]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        return json_response(
            {"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": False}
        )

    async def _video_get(self, request: web.Request) -> web.Response:
        job = self._video(request)
        job.advance(int(time.time()))
        return json_response(job.resource())

    async def _video_delete(self, request: web.Request) -> web.Response:
        job = self._video(request)
        del self.videos[job.id]
        return json_response({"id": job.id, "object": "video.deleted", "deleted": True})

    async def _video_content(self, request: web.Request) -> web.StreamResponse:
        job = self._video(request)
        variant = request.query.get("variant", "video")
        if job.status != "completed":
            return error_response(404, f"Video '{job.id}' is not ready (status: {job.status}).")
        if variant not in ("video", "thumbnail", "spritesheet"):
            return error_response(400, f"Invalid variant: '{variant}'.", param="variant")
        payload, kind = (fake_mp4(job.id), "video/mp4") if variant == "video" else (TINY_PNG, "image/png")
        response = web.StreamResponse(headers={"Content-Type": kind})
        response.content_length = len(payload)
        await response.prepare(request)
        for start in range(0, len(payload), _DOWNLOAD_PIECE):
            await response.write(payload[start : start + _DOWNLOAD_PIECE])
        await response.write_eof()
        return response

    def _video(self, request: web.Request) -> VideoJob:
        video_id = request.match_info["video_id"]
        job = self.videos.get(video_id)
        if job is None:
            raise _Rejected(error_response(404, f"Video with id '{video_id}' not found.", param="video_id"))
        return job


def _add_extras(answer: dict[str, Any], scripted: ScriptedReply) -> None:
    """A vendor's own keys in a completion or chunk (`ScriptedReply.extra_*`), where a vendor puts them."""
    answer.update(scripted.extra_fields)
    usage = answer.get("usage")
    if isinstance(usage, dict):
        usage.update(scripted.extra_usage_fields)
    if not scripted.extra_message_fields:
        return
    for choice in answer["choices"]:
        message = choice.get("message")
        if message is not None:
            message.update(scripted.extra_message_fields)
        elif choice["delta"].get("role"):  # the first delta of a choice opens with the role
            choice["delta"].update(scripted.extra_message_fields)


def _missing_parameter(name: str) -> _Rejected:
    message = f"Missing required parameter: '{name}'."
    return _Rejected(error_response(400, message, param=name, code="missing_required_parameter"))


def _model(name: str, created: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": "system"}


def _is_stream(record: RecordedRequest) -> bool:
    return isinstance(record.json, dict) and record.json.get("stream") is True


async def _abort(request: web.Request) -> None:
    """Drop the connection after what was written has left, so the client sees a mid-body cut."""
    transport = request.transport
    if transport is None:
        return
    for _ in range(200):
        if transport.get_write_buffer_size() == 0:
            break
        await asyncio.sleep(0.005)
    transport.abort()


def _schema_refusal(path: str, body: Any) -> web.Response | None:
    """OpenAI's 400 for a body that breaks its endpoint's request schema, or None."""
    schema = _REQUEST_SCHEMAS.get(path)
    if schema is None or not isinstance(body, dict):
        return None
    from tests.openapi_schema import schema_violations

    violations = schema_violations(body, schema, limit=1)
    if not violations:
        return None
    where, _, what = violations[0].partition(": ")
    return error_response(400, f"Invalid request: {what}", param=where.replace("/", ".") or None)


def _record(request: web.Request, body: bytes) -> RecordedRequest:
    record = RecordedRequest(
        method=request.method,
        path=request.path,
        query=dict(request.query),
        headers={name.lower(): value for name, value in request.headers.items()},
        json=None,
        body=body,
    )
    if request.content_type == "multipart/form-data":
        record.form, record.files = _multipart(request.headers["Content-Type"], body)
    elif body:
        try:
            record.json = orjson.loads(body)
        except orjson.JSONDecodeError:
            record.json = None
    return record


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, RecordedFile]]:
    # The body was already read for the record, so parse the bytes rather than the request stream.
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    form: dict[str, str] = {}
    files: dict[str, RecordedFile] = {}
    if not message.is_multipart():
        return form, files
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition") or "")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            form[name] = data.decode(errors="replace")
        else:
            files[name] = RecordedFile(filename, part.get_content_type(), data)
    return form, files
