"""The aiohttp bridge: OpenAI's REST/SSE surface translated onto the gateway's gRPC services."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import orjson
from aiohttp import BodyPartReader, web

from http_bridge.accounts_routes import add_account_routes
from http_bridge.call_headers import unary
from http_bridge.completions_routes import add_completions_routes
from http_bridge.console import ConsoleOptions, add_console
from http_bridge.errors import as_gateway_error, error_event, payload_error
from http_bridge.json_depth import too_deep
from http_bridge.messages_errors import is_messages_path
from http_bridge.messages_routes import add_messages_routes
from http_bridge.observe import RPC_CALLED
from http_bridge.observe import install as install_observability
from http_bridge.openapi import add_openapi_route
from http_bridge.refusals import refusal_response
from http_bridge.request_ids import (
    client_request_id_of,
    echo_client_request_id,
    request_id_of,
)
from http_bridge.responses_routes import add_response_routes
from http_bridge.route_auth import caller_refusal
from http_bridge.sse import relay_stream
from http_bridge.stubs import GatewayStubs
from http_bridge.usage_routes import add_usage_routes
from server.errors import AuthenticationFailed, GatewayError, InvalidRequest, MethodNotAllowed, NotFound
from server.observability.ids import BRIDGE_TOKEN
from server.routing.timeouts import TIMEOUT_HEADERS, parse_timeout
from siraya.router.codec import chat as chat_codec
from siraya.router.codec import embeddings as embeddings_codec
from siraya.router.codec import images as images_codec
from siraya.router.codec import models as models_codec
from siraya.router.codec import responses as responses_codec
from siraya.router.codec import videos as videos_codec
from siraya.router.codec.errors import CodecError
from siraya.router.v1 import (
    chat_pb2,
    embeddings_pb2,
    images_pb2,
    models_pb2,
    responses_pb2,
    videos_pb2,
)

STUBS = web.AppKey("stubs", GatewayStubs)
READY = web.AppKey("ready", list)
MAX_BODY_BYTES = web.AppKey("max_body_bytes", int)
# W3C trace context: version, trace-id, parent-id, flags (ids not all zeros, version not ff). An
# invalid traceparent is dropped with its tracestate, so the trace restarts, as the spec says.
_TRACEPARENT = re.compile(r"(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
MAX_JSON_DEPTH = web.AppKey("max_json_depth", int)
DEFAULT_MAX_JSON_DEPTH = 32
# Request headers passed to the servicers as they are (printable ASCII only).
FORWARDED_HEADERS = ("x-siraya-cache",)
PROVIDER_HEADER = "x-siraya-provider"
_JSON = "application/json"
_INVALID_JSON = (
    "We could not parse the JSON body of your request. The API expects a JSON payload, "
    "but what was sent was not valid JSON."
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def call_metadata(request: web.Request) -> list[tuple[str, str]]:
    """The gRPC metadata of a request's call. Every value is printable ASCII, as gRPC requires: a
    header value with other bytes (aiohttp hands them over surrogate-escaped) is refused or dropped."""
    headers = request.headers
    metadata = [("x-request-id", request_id_of(request)), ("x-siraya-bridge", BRIDGE_TOKEN)]
    client_id = client_request_id_of(request)
    if client_id is not None:
        metadata.append(("x-client-request-id", client_id))
    authorization = headers.get("Authorization")
    if authorization is not None:
        if not (authorization.isascii() and authorization.isprintable()):
            raise AuthenticationFailed("Incorrect API key provided: it is not printable ASCII.")
        metadata.append(("authorization", authorization))
    traceparent = headers.get("traceparent")
    if traceparent is not None and _TRACEPARENT.fullmatch(traceparent):
        metadata.append(("traceparent", traceparent))
        tracestate = headers.get("tracestate")
        if tracestate is not None and tracestate.isascii() and tracestate.isprintable():
            metadata.append(("tracestate", tracestate))
    for header in TIMEOUT_HEADERS:
        timeout = headers.get(header)
        if timeout is not None:
            if parse_timeout(timeout) is None:
                raise InvalidRequest(f"The {header} header must be a positive number of seconds.")
            metadata.append((header, timeout))
    for name in FORWARDED_HEADERS:
        value = headers.get(name)
        if value is not None and value.isascii() and value.isprintable():
            metadata.append((name, value))
    request[RPC_CALLED] = True
    return metadata


async def read_json(request: web.Request) -> dict[str, Any]:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise InvalidRequest(
            f"The request body is larger than the {request.app[MAX_BODY_BYTES]} bytes this gateway accepts.",
            code="request_too_large",
        ) from None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        if str(error).startswith(("depth limit", "recursion limit")):  # orjson's own, past 1,024 levels
            raise _nested_too_deep(request.app[MAX_JSON_DEPTH], None) from None
        raise InvalidRequest(_INVALID_JSON, code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    # Nesting needs an opening bracket per level: only a body with more of them than the limit
    # is walked (two C scans of the bytes cost about as much as a tenth of the parse).
    limit = request.app[MAX_JSON_DEPTH]
    if raw.count(b"{") + raw.count(b"[") > limit and (key := too_deep(body, limit)) is not None:
        raise _nested_too_deep(limit, key)
    return body


def _nested_too_deep(limit: int, key: str | None) -> InvalidRequest:
    return InvalidRequest(
        f"The request body nests arrays and objects more than {limit} levels deep"
        + (f" (in '{key}')." if key is not None else "."),
        param=key,
        code="nesting_too_deep",
    )


def json_response(request: web.Request, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    if headers:
        headers["X-Request-Id"] = request_id_of(request)
    else:
        headers = {"X-Request-Id": request_id_of(request)}
    return web.Response(body=body, content_type=_JSON, headers=headers)


def _with_provider(headers: dict[str, str] | None, provider: str) -> dict[str, str] | None:
    """Add `x-siraya-provider`: the provider that served the request (the reply's `provider`)."""
    if not provider:
        return headers
    headers = headers if headers is not None else {}
    headers[PROVIDER_HEADER] = provider
    return headers


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (GatewayError, CodecError, grpc.aio.AioRpcError) as error:
        failure = as_gateway_error(error)
    except web.RequestPayloadError as error:
        failure = payload_error(error)
    except web.HTTPNotFound:
        # OpenAI answers an unknown URL with a 400; Anthropic's doors with a 404.
        unknown = NotFound if is_messages_path(request.path) else InvalidRequest
        failure = unknown(f"Invalid URL ({request.method} {request.path})", code="unknown_url")
        return refusal_response(request.path, failure, request_id_of(request))
    except web.HTTPMethodNotAllowed as refused:
        failure = MethodNotAllowed(
            f"Method {request.method} is not allowed on {request.path}",
            headers={"allow": ", ".join(sorted(refused.allowed_methods))},
        )
        return refusal_response(request.path, failure, request_id_of(request))
    if not request.get(RPC_CALLED):
        # Refused before its call: a caller without the key the route needs hears that first.
        resource = request.match_info.route.resource
        if resource is not None:
            authorization = request.headers.get("Authorization")
            failure = await caller_refusal(request.app[STUBS], resource.canonical, authorization, failure)
    return refusal_response(request.path, failure, request_id_of(request))


# chat


async def chat_completions(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    params = chat_codec.decode_chat_request(body)
    # The body as the client wrote it too (aiohttp keeps what it read): an OpenAI-compatible upstream
    # receives its fields as written, the relay lane. Over a real gRPC hop the params carry only the
    # model (the call's labels) and the servicer decodes the rest from the body again: both in full
    # would double a request at the message size limit.
    raw = await request.read()
    stubs = request.app[STUBS]
    if stubs.serialized:
        params = chat_pb2.ChatCompletionParams(model=params.model)
    metadata = call_metadata(request)
    if body.get("stream") is True:
        call = stubs.chat.StreamChatCompletion(
            chat_pb2.StreamChatCompletionRequest(params=params, openai_json=True, openai_body=raw),
            metadata=metadata,
        )
        return await relay_stream(
            request,
            call,
            _chunk_frame,
            error_event,
            request_id_of(request),
            first_headers=lambda reply: _with_provider(None, reply.provider) or {},
        )
    reply, headers = await unary(
        stubs.chat.CreateChatCompletion(
            chat_pb2.CreateChatCompletionRequest(params=params, openai_json=True, openai_body=raw),
            metadata=metadata,
        )
    )
    return json_response(request, reply.completion_json, _with_provider(headers, reply.provider))


def _chunk_frame(reply: chat_pb2.StreamChatCompletionResponse) -> bytes:
    return b"data: " + reply.chunk_json + b"\n\n"


# responses


def _response_event_frame(reply: responses_pb2.StreamResponseResponse) -> bytes:
    event = reply.event
    return (
        b"event: "
        + event.type.encode()
        + b"\ndata: "
        + responses_codec.encode_response_event(event)
        + b"\n\n"
    )


def _response_error_frame(error: GatewayError, last: responses_pb2.StreamResponseResponse | None) -> bytes:
    # ResponseErrorEvent requires a sequence_number: the one after the last event written.
    sequence = last.event.sequence_number + 1 if last is not None else 0
    payload = {
        "type": "error",
        "code": error.code,
        "message": error.message,
        "param": error.param,
        "sequence_number": sequence,
    }
    return b"event: error\ndata: " + orjson.dumps(payload) + b"\n\n"


async def relay_response_events(request: web.Request, call: Any) -> web.StreamResponse:
    """A Responses event stream as OpenAI's SSE (typed events, no [DONE])."""
    return await relay_stream(
        request,
        call,
        _response_event_frame,
        _response_error_frame,
        request_id_of(request),
        done=None,
        first_headers=lambda reply: _with_provider(None, reply.event.response.provider) or {},
    )


async def create_response(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    params = responses_codec.decode_response_request(body)
    stubs = request.app[STUBS]
    metadata = call_metadata(request)
    if body.get("stream") is True:
        call = stubs.responses.StreamResponse(
            responses_pb2.StreamResponseRequest(params=params), metadata=metadata
        )
        return await relay_response_events(request, call)
    reply, headers = await unary(
        stubs.responses.CreateResponse(responses_pb2.CreateResponseRequest(params=params), metadata=metadata)
    )
    served_headers = _with_provider(headers, reply.response.provider)
    return json_response(request, responses_codec.encode_response(reply.response), served_headers)


# embeddings, images


async def create_embedding(request: web.Request) -> web.StreamResponse:
    params = embeddings_codec.decode_embedding_request(await read_json(request))
    reply, headers = await unary(
        request.app[STUBS].embeddings.CreateEmbedding(
            embeddings_pb2.CreateEmbeddingRequest(params=params), metadata=call_metadata(request)
        )
    )
    encoding = params.encoding_format if params.HasField("encoding_format") else "float"
    served_headers = _with_provider(headers, reply.result.provider)
    return json_response(
        request, embeddings_codec.encode_embedding_list(reply.result, encoding), served_headers
    )


async def generate_images(request: web.Request) -> web.StreamResponse:
    params = images_codec.decode_image_request(await read_json(request))
    reply, headers = await unary(
        request.app[STUBS].images.GenerateImages(
            images_pb2.GenerateImagesRequest(params=params), metadata=call_metadata(request)
        )
    )
    served_headers = _with_provider(headers, reply.result.provider)
    return json_response(request, images_codec.encode_images_result(reply.result), served_headers)


# models


async def list_models(request: web.Request) -> web.StreamResponse:
    reply = await request.app[STUBS].models.ListModels(
        models_pb2.ListModelsRequest(), metadata=call_metadata(request)
    )
    return json_response(request, models_codec.encode_model_list(reply.data))


async def get_model(request: web.Request) -> web.StreamResponse:
    reply = await request.app[STUBS].models.GetModel(
        models_pb2.GetModelRequest(id=request.match_info["model"]), metadata=call_metadata(request)
    )
    return json_response(request, models_codec.encode_model_bytes(reply.model))


# videos


async def _video_params(request: web.Request) -> videos_pb2.VideoParams:
    if request.content_type.startswith("multipart/"):
        fields: dict[str, str] = {}
        reference: tuple[bytes, str] | None = None
        async for part in await request.multipart():
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is not None or part.name == "input_reference":
                data = await part.read()
                reference = (bytes(data), part.headers.get("Content-Type", "application/octet-stream"))
            else:
                fields[part.name] = await part.text()
        return videos_codec.decode_video_form(fields, reference)
    return videos_codec.decode_video_request(await read_json(request))


async def create_video(request: web.Request) -> web.StreamResponse:
    params = await _video_params(request)
    reply = await request.app[STUBS].videos.CreateVideo(
        videos_pb2.CreateVideoRequest(params=params), metadata=call_metadata(request)
    )
    return json_response(request, videos_codec.encode_video(reply.video))


async def get_video(request: web.Request) -> web.StreamResponse:
    reply = await request.app[STUBS].videos.GetVideo(
        videos_pb2.GetVideoRequest(id=request.match_info["video_id"]), metadata=call_metadata(request)
    )
    return json_response(request, videos_codec.encode_video(reply.video))


async def download_video(request: web.Request) -> web.StreamResponse:
    download = videos_pb2.DownloadVideoContentRequest(id=request.match_info["video_id"])
    variant = request.query.get("variant")
    if variant is not None:
        download.variant = variant
    call = request.app[STUBS].videos.DownloadVideoContent(download, metadata=call_metadata(request))
    replies = call.__aiter__()
    try:
        first = await replies.__anext__()
    except StopAsyncIteration:
        first = videos_pb2.DownloadVideoContentResponse()
    response = web.StreamResponse(
        headers={
            "Content-Type": first.content_type or "application/octet-stream",
            "X-Request-Id": request_id_of(request),
        }
    )
    await response.prepare(request)
    try:
        await response.write(first.data)
        async for reply in replies:
            await response.write(reply.data)
    except grpc.aio.AioRpcError:
        # Headers are gone: cut the body short so the client sees a truncated download, not a valid file.
        call.cancel()
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


# health


async def live(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.StreamResponse:
    ok = bool(request.app[READY] and request.app[READY][0])
    return web.json_response({"status": "ready" if ok else "not ready"}, status=200 if ok else 503)


def build_app(
    stubs: GatewayStubs,
    max_body_bytes: int,
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH,
    console: ConsoleOptions | None = None,
) -> web.Application:
    app = web.Application(client_max_size=max_body_bytes, middlewares=[error_middleware])
    app[STUBS] = stubs
    app[READY] = [True]
    app[MAX_BODY_BYTES] = max_body_bytes
    app[MAX_JSON_DEPTH] = max_json_depth
    install_observability(app)
    app.on_response_prepare.append(echo_client_request_id)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model:.+}", get_model)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/responses", create_response)
    app.router.add_post("/v1/embeddings", create_embedding)
    app.router.add_post("/v1/images/generations", generate_images)
    app.router.add_post("/v1/videos", create_video)
    app.router.add_post("/v1/videos/generations", create_video)
    app.router.add_get("/v1/videos/{video_id}", get_video)
    app.router.add_get("/v1/videos/{video_id}/content", download_video)
    add_account_routes(app, STUBS, read_json, call_metadata, request_id_of)
    add_messages_routes(app, STUBS, read_json, call_metadata, request_id_of)
    add_completions_routes(app, STUBS, read_json, call_metadata, request_id_of)
    add_response_routes(app, STUBS, call_metadata, json_response, relay_response_events)
    add_usage_routes(app, STUBS, call_metadata, request_id_of)
    if console is not None:
        add_console(app, STUBS, console, request_id_of)
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
    add_openapi_route(app)
    return app
