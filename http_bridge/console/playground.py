"""The playground: a chat answer streamed through the gateway itself, with a key of one's choice.

The browser posts the prompt (and optionally a key, in a password field) to the console; the console
calls ChatService's stream with that key, or with the key the person signed in with, exactly as
POST /v1/chat/completions would, and relays the chunks as server-sent events. The last chunk
carries the usage and its cost. The key never comes back in any response.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from http_bridge.console.frame import (
    CONSOLE,
    PREFIX,
    SECURITY_HEADERS,
    SESSION,
    CsrfRefused,
    page,
    render,
    secured,
)
from http_bridge.errors import error_event
from http_bridge.sse import relay_stream
from server.errors import InvalidRequest
from siraya.router.codec import chat as chat_codec
from siraya.router.v1 import chat_pb2, models_pb2

__all__ = ["add_playground"]

MAX_PROMPT_CHARS = 20_000


@page()
async def playground(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    session = request[SESSION]
    reply = await console.stubs(request).models.ListModels(
        models_pb2.ListModelsRequest(), metadata=console.metadata(request, session.key)
    )
    chat_models = [model.id for model in reply.data if model.kind == models_pb2.MODEL_KIND_CHAT]
    return render(request, "playground.html", session=session, active="playground", models=chat_models)


def _chat_body(body: dict[str, Any]) -> dict[str, Any]:
    model, prompt, system = body.get("model"), body.get("prompt"), body.get("system") or ""
    if not isinstance(model, str) or not model:
        raise InvalidRequest("Pick a model.", param="model", code="missing_required_parameter")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("Write a message.", param="prompt", code="missing_required_parameter")
    if not isinstance(system, str) or len(prompt) + len(system) > MAX_PROMPT_CHARS:
        raise InvalidRequest(
            "The message is too long for the playground.", param="prompt", code="invalid_value"
        )
    messages = ([{"role": "system", "content": system}] if system.strip() else []) + [
        {"role": "user", "content": prompt}
    ]
    chat: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    max_tokens = body.get("max_tokens")
    if max_tokens not in (None, ""):
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise InvalidRequest("'max_tokens' must be a positive whole number.", param="max_tokens")
        chat["max_tokens"] = max_tokens
    return chat


def _frame(reply: chat_pb2.StreamChatCompletionResponse) -> bytes:
    return b"data: " + reply.chunk_json + b"\n\n"


@page()
async def stream(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    session = request[SESSION]
    if not session.csrf_matches(request.headers.get("X-CSRF-Token")):
        raise CsrfRefused()
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise InvalidRequest("The playground sends JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The playground sends a JSON object.", code="invalid_json")
    key = body.get("key")
    key = key.strip() if isinstance(key, str) and key.strip() else session.key
    params = chat_codec.decode_chat_request(_chat_body(body))
    call = console.stubs(request).chat.StreamChatCompletion(
        chat_pb2.StreamChatCompletionRequest(params=params, openai_json=True),
        metadata=console.metadata(request, key),
    )
    response = await relay_stream(
        request,
        call,
        _frame,
        error_event,
        console.request_id_of(request),
        first_headers=lambda _: dict(SECURITY_HEADERS),
    )
    return secured(response)


def add_playground(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/playground", playground)
    app.router.add_post(f"{PREFIX}/playground/stream", stream)
