"""No endpoint can bypass money (issue #18, item 7): every route of the HTTP bridge and every RPC of the
gRPC services, enumerated from the running app and from the service table, is either named here as
one that calls no model, or refuses a key whose credit is spent (402, FAILED_PRECONDITION) and charges
a key with a little credit (a ledger record with a cost).

Behaviour, not grep: a route that is in neither list is called anyway, with a body that any OpenAI-style
model endpoint accepts, by a key with nothing left; it must be refused with 402. So a new model route
that skips admission fails this test the day it is added; a new route that calls no model fails it
too, until it is named in NON_MODEL_ROUTES with the reason.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.message import Message

from server.accounts.keys import NewKey
from siraya.router.codec.chat_request import decode_chat_request
from siraya.router.codec.completions import decode_completion_request
from siraya.router.codec.embeddings import decode_embedding_request
from siraya.router.codec.images import decode_image_request
from siraya.router.codec.messages_request import decode_message_request
from siraya.router.codec.responses_request import decode_response_request
from siraya.router.codec.videos import decode_video_request
from siraya.router.services import SERVICES
from siraya.router.v1 import (
    chat_pb2,
    completions_pb2,
    embeddings_pb2,
    images_pb2,
    messages_pb2,
    responses_pb2,
    videos_pb2,
)
from tests.e2e.loop_gateway import LoopGateway
from tests.fakes.openai_upstream import FakeOpenAIUpstream

UPSTREAM_KEY = "sk-upstream-no-bypass-0123456789"
ADMIN_KEY = "sk-admin-no-bypass-secret-13579"
CONFIG = """
server: {{host: 127.0.0.1, http_port: 0, grpc_port: 0, data_dir: {data_dir}, admin_key: {admin_key}}}
accounts: {{ledger_flush_interval: 0.05, key_cache_ttl: 0.2}}
providers:
  fake: {{type: openai, base_url: "{url}", api_key: "{key}", native_responses: true}}
models:
  - {{id: chat-priced, provider: fake, upstream_model: gpt-4o-mini,
      pricing: {{input_per_million: 1, output_per_million: 2}}}}
  - {{id: embed-priced, provider: fake, upstream_model: text-embedding-3-small, kind: embedding,
      pricing: {{input_per_million: 1}}}}
  - {{id: image-priced, provider: fake, upstream_model: gpt-image-1, kind: image,
      pricing: {{per_image: 0.001}}}}
  - {{id: video-priced, provider: fake, upstream_model: sora-2, kind: video,
      pricing: {{per_video_second: 0.001}}}}
"""

# (method, path as the router names it) of every route that calls no model, and why.
NON_MODEL_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/v1/models"): "the catalogue",
    ("GET", "/v1/models/{model}"): "the catalogue",
    ("POST", "/v1/keys"): "key administration",
    ("POST", "/v1/teams"): "team administration",
    ("GET", "/v1/teams"): "team administration",
    ("GET", "/v1/teams/{team_id}"): "team administration",
    ("PATCH", "/v1/teams/{team_id}"): "team administration",
    ("DELETE", "/v1/teams/{team_id}"): "team administration",
    ("GET", "/openapi.json"): "the API document",
    ("GET", "/v1/keys"): "key administration",
    ("GET", "/v1/keys/{key_id}"): "key administration",
    ("PATCH", "/v1/keys/{key_id}"): "key administration",
    ("DELETE", "/v1/keys/{key_id}"): "key administration",
    ("POST", "/v1/keys/{key_id}/rotate"): "key administration",
    ("GET", "/v1/key"): "the calling key's own limits and usage",
    ("GET", "/v1/generation"): "the ledger read back",
    ("GET", "/v1/generations"): "the ledger read back",
    ("GET", "/v1/usage"): "the ledger read back",
    ("GET", "/v1/providers"): "routing state",
    ("GET", "/v1/audit"): "the audit log",
    ("GET", "/v1/responses/{response_id}"): "a stored response, read back",
    ("DELETE", "/v1/responses/{response_id}"): "a stored response, deleted",
    ("GET", "/v1/responses/{response_id}/input_items"): "a stored response, read back",
    ("POST", "/v1/responses/{response_id}/cancel"): "stops a background response (its create was charged)",
    ("GET", "/v1/videos/{video_id}"): "a video job's state (its create was charged)",
    ("GET", "/v1/videos/{video_id}/content"): "a finished video's bytes (its create was charged)",
    ("POST", "/v1/messages/count_tokens"): "counted by the gateway itself, no upstream call",
    ("GET", "/health/live"): "health",
    ("GET", "/health/ready"): "health",
    ("GET", "/metrics"): "metrics",
    ("GET", "/"): "the console",
    ("GET", "/console"): "the console",
    ("GET", "/console/login"): "the console",
    ("POST", "/console/login"): "the console",
    ("POST", "/console/logout"): "the console",
    ("GET", "/console/"): "the console",
    ("GET", "/console/logs"): "the console",
    ("GET", "/console/models"): "the console",
    ("GET", "/console/audit"): "the console",
    ("GET", "/console/static/{path}"): "the console",
    ("GET", "/console/keys"): "the console's key administration",
    ("GET", "/console/keys/{key_id}"): "the console's key administration",
    ("POST", "/console/keys"): "the console's key administration",
    ("POST", "/console/keys/{key_id}"): "the console's key administration",
    ("POST", "/console/keys/{key_id}/revoke"): "the console's key administration",
    ("POST", "/console/keys/{key_id}/rotate"): "the console's key administration",
    ("GET", "/console/playground"): "the playground's page (its stream is a model route)",
    ("*", "/console/{tail}"): "the console's not-found page",
}

CHAT = {"model": "chat-priced", "messages": [{"role": "user", "content": "hi there"}], "max_tokens": 5}
RESPONSE = {"model": "chat-priced", "input": "hi there", "max_output_tokens": 16}
EMBEDDING = {"model": "embed-priced", "input": "hi there"}
IMAGE = {"model": "image-priced", "prompt": "a cat"}
VIDEO = {"model": "video-priced", "prompt": "a cat surfing", "seconds": "4"}
COMPLETION = {"model": "chat-priced", "prompt": "hi there", "max_tokens": 5}
PLAYGROUND = {"model": "chat-priced", "prompt": "hi there", "max_tokens": 5}
MESSAGE = {"model": "chat-priced", "max_tokens": 5, "messages": [{"role": "user", "content": "hi there"}]}
# The model routes this test knows how to call; each body once as it is, once streamed where it streams.
MODEL_ROUTES: dict[tuple[str, str], tuple[dict[str, Any], bool]] = {
    ("POST", "/v1/chat/completions"): (CHAT, True),
    ("POST", "/v1/responses"): (RESPONSE, True),
    ("POST", "/v1/embeddings"): (EMBEDDING, False),
    ("POST", "/v1/images/generations"): (IMAGE, False),
    ("POST", "/v1/videos"): (VIDEO, False),
    ("POST", "/v1/videos/generations"): (VIDEO, False),
    ("POST", "/v1/completions"): (COMPLETION, True),
    ("POST", "/v1/messages"): (MESSAGE, True),
    # The console's playground, signed in with the key (it always streams).
    ("POST", "/console/playground/stream"): (PLAYGROUND, False),
}
# What a route in neither list is sent: the fields of any OpenAI-style model endpoint at once.
PROBE = {**CHAT, "input": "hi there", "prompt": "hi there"}

# Every RPC that calls no model, and why (full method names).
NON_MODEL_RPCS: dict[str, str] = {
    "siraya.router.v1.ResponsesService/GetResponse": "a stored response, read back",
    "siraya.router.v1.ResponsesService/DeleteResponse": "a stored response, deleted",
    "siraya.router.v1.ResponsesService/ListInputItems": "a stored response, read back",
    "siraya.router.v1.ResponsesService/CancelResponse": "stops a background response",
    "siraya.router.v1.ResponsesService/WatchResponse": "follows a background response",
    "siraya.router.v1.ModelsService/ListModels": "the catalogue",
    "siraya.router.v1.ModelsService/GetModel": "the catalogue",
    "siraya.router.v1.VideosService/GetVideo": "a video job's state",
    "siraya.router.v1.VideosService/WatchVideo": "a video job's state",
    "siraya.router.v1.VideosService/DownloadVideoContent": "a finished video's bytes",
    "siraya.router.v1.MessagesService/CountTokens": "counted by the gateway itself",
    **{
        f"siraya.router.v1.{service}/{method}": "key administration and the ledger"
        for service, methods in (
            (
                "KeysService",
                ("CreateKey", "ListKeys", "GetKey", "RevokeKey", "RotateKey", "SetCreditLimit", "UpdateKey"),
            ),
            ("TeamsService", ("CreateTeam", "ListTeams", "GetTeam", "UpdateTeam", "DeleteTeam")),
            ("AccountService", ("GetCurrentKey", "GetGeneration")),
            ("UsageService", ("ListGenerations", "GetUsage", "ListProviders", "ListAuditEvents")),
        )
        for method in methods
    },
}


# Each model RPC's request, built the way a gRPC caller builds it.
def _built(
    request: Callable[..., Message], decode: Callable[[Any], Message], body: Any
) -> Callable[[], Message]:
    return lambda: request(params=decode(dict(body)))


MODEL_RPCS: dict[str, Callable[[], Message]] = {
    "siraya.router.v1.ChatService/CreateChatCompletion": _built(
        chat_pb2.CreateChatCompletionRequest, decode_chat_request, CHAT
    ),
    "siraya.router.v1.ChatService/StreamChatCompletion": _built(
        chat_pb2.StreamChatCompletionRequest, decode_chat_request, CHAT
    ),
    "siraya.router.v1.ResponsesService/CreateResponse": _built(
        responses_pb2.CreateResponseRequest, decode_response_request, RESPONSE
    ),
    "siraya.router.v1.ResponsesService/StreamResponse": _built(
        responses_pb2.StreamResponseRequest, decode_response_request, RESPONSE
    ),
    "siraya.router.v1.EmbeddingsService/CreateEmbedding": _built(
        embeddings_pb2.CreateEmbeddingRequest, decode_embedding_request, EMBEDDING
    ),
    "siraya.router.v1.ImagesService/GenerateImages": _built(
        images_pb2.GenerateImagesRequest, decode_image_request, IMAGE
    ),
    "siraya.router.v1.VideosService/CreateVideo": _built(
        videos_pb2.CreateVideoRequest, decode_video_request, VIDEO
    ),
    "siraya.router.v1.MessagesService/CreateMessage": _built(
        messages_pb2.CreateMessageRequest, decode_message_request, MESSAGE
    ),
    "siraya.router.v1.MessagesService/StreamMessage": _built(
        messages_pb2.StreamMessageRequest, decode_message_request, MESSAGE
    ),
    "siraya.router.v1.CompletionsService/CreateCompletion": _built(
        completions_pb2.CreateCompletionRequest, decode_completion_request, COMPLETION
    ),
    "siraya.router.v1.CompletionsService/StreamCompletion": _built(
        completions_pb2.StreamCompletionRequest, decode_completion_request, COMPLETION
    ),
}


class BypassHarness(LoopGateway):
    def __init__(self, tmp_dir: Path) -> None:
        self.upstream = FakeOpenAIUpstream(api_key=UPSTREAM_KEY)
        super().__init__(tmp_dir, in_process=True, upstreams=(self.upstream,))

    async def _start(self) -> None:
        await self._start_upstreams()
        config = CONFIG.format(
            data_dir=self.tmp_dir / "data", admin_key=ADMIN_KEY, url=self.upstream.base_url, key=UPSTREAM_KEY
        )
        await self._start_gateway(config, {}, "bypass")

    def key(self, credit_limit: float) -> tuple[str, str]:
        assert self.running is not None
        record, secret = self.run(
            self.running.gateway.keys.create(NewKey(name="k", credit_limit=credit_limit))
        )
        return record.id, secret

    def routes(self) -> set[tuple[str, str]]:
        """(method, path) of every route the running bridge serves (HEAD twins of GETs left out)."""
        assert self.running is not None
        found = set()
        for route in self.running._app.router.routes():
            info = route.resource.get_info() if route.resource is not None else {}
            path = info.get("path") or info.get("formatter") or ""
            path = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)
            if route.method not in ("HEAD", "OPTIONS"):
                found.add((route.method, path))
        return found


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BypassHarness]:
    harness = BypassHarness(Path(tmp_path_factory.mktemp("no-bypass"))).start()
    try:
        yield harness
    finally:
        harness.stop()


def _auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", "x-api-key": secret, "anthropic-version": "2023-06-01"}


def _call(
    gw: BypassHarness, method: str, path: str, secret: str, body: dict[str, Any] | None
) -> httpx.Response:
    if path == "/console/playground/stream":
        return _console_call(gw, path, secret, body)
    url = gw.root_url + re.sub(r"\{\w+\}", "x", path)
    return httpx.request(method, url, json=body, headers=_auth(secret), timeout=20)


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _console_call(gw: BypassHarness, path: str, secret: str, body: dict[str, Any] | None) -> httpx.Response:
    """A console POST as the browser makes it: signed in with the key, with the session's CSRF token."""
    with httpx.Client(base_url=gw.root_url, follow_redirects=False, timeout=20) as browser:
        token = CSRF.search(browser.get("/console/login").text)
        assert token is not None
        signed_in = browser.post("/console/login", data={"key": secret, "csrf_token": token.group(1)})
        assert signed_in.status_code == 303, signed_in.text
        token = CSRF.search(browser.get("/console/playground").text)
        assert token is not None, "the playground page carries the session's CSRF token"
        response = browser.post(path, json=body, headers={"X-CSRF-Token": token.group(1)})
        response.read()
        return response


def _ledger(gw: BypassHarness, key_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        gw.base_url + "/generations", params={"key": key_id}, headers=_auth(ADMIN_KEY), timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def test_the_route_lists_name_only_routes_that_exist(gw: BypassHarness) -> None:
    served = gw.routes()
    assert set(NON_MODEL_ROUTES) <= served, set(NON_MODEL_ROUTES) - served
    assert set(MODEL_ROUTES) <= served, set(MODEL_ROUTES) - served
    assert not set(NON_MODEL_ROUTES) & set(MODEL_ROUTES)


def test_every_route_that_may_call_a_model_refuses_a_spent_key(gw: BypassHarness) -> None:
    _, spent = gw.key(credit_limit=0.0)
    upstream_calls = len(gw.upstream.requests)
    bypasses = []
    for method, path in sorted(gw.routes()):
        if (method, path) in NON_MODEL_ROUTES:
            continue
        body, streams = MODEL_ROUTES.get((method, path), (PROBE, False))
        bodies = [body, {**body, "stream": True}] if streams else [body]
        for sent in bodies:
            response = _call(gw, method, path, spent, sent if method in ("POST", "PATCH", "PUT") else None)
            if response.status_code != 402:
                bypasses.append(
                    f"{method} {path} {'(stream) ' if 'stream' in sent else ''}-> {response.status_code}"
                )
    assert not bypasses, (
        "these routes did not refuse a key with no credit left: a model route must go through admission,"
        " and a route that calls no model belongs in NON_MODEL_ROUTES: " + "; ".join(bypasses)
    )
    reached = [request.path for request in gw.upstream.requests[upstream_calls:]]
    assert reached == [], f"refused requests still reached the upstream: {reached}"


@pytest.mark.parametrize(("method", "path"), sorted(MODEL_ROUTES))
def test_every_model_route_charges_the_key(gw: BypassHarness, method: str, path: str) -> None:
    body, streams = MODEL_ROUTES[(method, path)]
    for sent in [body, {**body, "stream": True}] if streams else [body]:
        key_id, secret = gw.key(credit_limit=0.05)
        response = _call(gw, method, path, secret, sent)
        assert response.status_code == 200, response.text
        (record,) = _ledger(gw, key_id)
        assert record["status"] == "success" and record["total_cost"] > 0, record
        key = httpx.get(gw.base_url + "/key", headers=_auth(secret), timeout=10).json()["data"]
        assert key["usage"] == pytest.approx(record["total_cost"])


def _methods() -> list[str]:
    return [
        f"{contract.full_name}/{method.name}"
        for contract in SERVICES
        for method in contract.descriptor.methods
    ]


def test_the_rpc_lists_cover_the_service_table_exactly() -> None:
    methods = set(_methods())
    unnamed = methods - set(NON_MODEL_RPCS) - set(MODEL_RPCS)
    assert not unnamed, (
        f"RPCs neither charged here nor named as calling no model: {sorted(unnamed)}. A model RPC needs a"
        " request in MODEL_RPCS (so that this test proves it is charged); one that calls no model, its"
        " reason in NON_MODEL_RPCS."
    )
    assert set(NON_MODEL_RPCS) <= methods and set(MODEL_RPCS) <= methods
    assert not set(NON_MODEL_RPCS) & set(MODEL_RPCS)


async def _invoke(channel: grpc.aio.Channel, method: str, request: Message, secret: str) -> None:
    service, name = method.split("/")
    descriptor = next(c.descriptor for c in SERVICES if c.full_name == service).methods_by_name[name]
    response_type = _response_class(descriptor.output_type.full_name, request)
    metadata = (("authorization", f"Bearer {secret}"),)
    path = f"/{method}"
    if descriptor.server_streaming:
        stream: AsyncIterator[Any] = channel.unary_stream(
            path,
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString,
        )(request, metadata=metadata)
        async for _ in stream:
            pass
    else:
        await channel.unary_unary(
            path,
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString,
        )(request, metadata=metadata)


def _response_class(full_name: str, request: Message) -> Any:
    module = __import__(type(request).__module__, fromlist=["_"])
    return getattr(module, full_name.rsplit(".", 1)[1])


async def test_every_model_rpc_refuses_a_spent_key_and_charges_one_with_credit(gw: BypassHarness) -> None:
    _, spent = gw.key(credit_limit=0.0)
    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        for method, build in sorted(MODEL_RPCS.items()):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _invoke(channel, method, build(), spent)
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION, (method, refused.value)
            key_id, secret = gw.key(credit_limit=0.05)
            await _invoke(channel, method, build(), secret)
            (record,) = _ledger(gw, key_id)
            assert record["status"] == "success" and record["total_cost"] > 0, (method, record)
