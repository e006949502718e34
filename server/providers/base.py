"""The interface every provider adapter implements, one adapter per upstream wire protocol.

Adapters take and return proto messages. They raise only `server.errors.GatewayError`
subclasses: upstream failures are classified once, here at the edge, by status and typed fields.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from siraya.router.codec.fields import JsonObject
from siraya.router.v1 import chat_pb2, embeddings_pb2, images_pb2, responses_pb2, videos_pb2


@dataclass(slots=True)
class Outcome:
    """What served a request and what it consumed, filled in by the gateway for logs and metrics."""

    model: str | None = None
    provider: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = None
    # `time.monotonic()` when the first stream item was ready to send.
    first_item_at: float | None = None
    # One list per upstream attempt, in start order, for the ledger (observability/attempts.py fills
    # them): [provider, model, upstream_model, started (monotonic), seconds, outcome, http_status,
    # spent, route]; seconds, outcome and http_status stay None while the attempt runs. `spent` is
    # first what the attempt returned (its answer, a stream's first item, or its error), then what it
    # consumed at the provider (server/attempt_spend.py); `route` prices it. None until the first attempt.
    attempts: list[list[Any]] | None = None
    # The prompt and answer text for the ledger (server/observability/bodies.BodyCapture), made at
    # admission only when `observability.store_bodies` is on.
    bodies: Any = None


@dataclass(slots=True)
class RequestContext:
    """What a request carries besides its params: who asked, and how long it may take."""

    # The gateway's own id: the ledger's and the reservation's identity, never the client's.
    request_id: str
    key_id: str | None = None
    # The client's own X-Request-Id (printable ASCII, short), kept for correlation only.
    client_request_id: str | None = None
    # Whether the call came from this process's own HTTP bridge (it carries the bridge's token).
    from_bridge: bool = False
    # Absolute `time.monotonic()` deadline, if the caller set one.
    deadline: float | None = None
    # Headers to forward to the upstream (request id, traceparent).
    forward_headers: dict[str, str] = field(default_factory=dict)
    outcome: Outcome = field(default_factory=Outcome)
    # Headers for the client's response (x-ratelimit-*), sent by the servicer as initial metadata.
    response_headers: dict[str, str] | None = None
    # The caller's own first-token and idle-between-chunks limits in seconds; they replace the model's.
    first_token_timeout: float | None = None
    idle_timeout: float | None = None
    # The credit reservation admission made for this request (a background response keeps it, so
    # that whoever finds the response orphaned by a dead process can release it).
    reservation_id: str | None = None
    # The caller's `x-siraya-cache` header, as sent (server/response_cache/).
    cache_directive: str | None = None


@dataclass(frozen=True, slots=True)
class VideoContent:
    content_type: str
    chunks: AsyncIterator[bytes]


class Provider(Protocol):
    """One configured upstream. `upstream_model` is the provider's own model name."""

    name: str
    # Whether the upstream serves /responses itself (else the gateway translates via chat).
    native_responses: bool

    async def chat(
        self, params: chat_pb2.ChatCompletionParams, upstream_model: str, ctx: RequestContext
    ) -> chat_pb2.ChatCompletion: ...

    def stream_chat(
        self, params: chat_pb2.ChatCompletionParams, upstream_model: str, ctx: RequestContext
    ) -> AsyncIterator[chat_pb2.ChatCompletionChunk]: ...

    async def respond(
        self, params: responses_pb2.ResponseParams, upstream_model: str, ctx: RequestContext
    ) -> responses_pb2.Response: ...

    def stream_response(
        self, params: responses_pb2.ResponseParams, upstream_model: str, ctx: RequestContext
    ) -> AsyncIterator[responses_pb2.ResponseStreamEvent]: ...

    async def embed(
        self, params: embeddings_pb2.EmbeddingParams, upstream_model: str, ctx: RequestContext
    ) -> embeddings_pb2.EmbeddingList: ...

    async def generate_images(
        self, params: images_pb2.ImageParams, upstream_model: str, ctx: RequestContext
    ) -> images_pb2.ImagesResult: ...

    async def create_video(
        self, params: videos_pb2.VideoParams, upstream_model: str, ctx: RequestContext
    ) -> videos_pb2.Video: ...

    async def get_video(self, upstream_id: str, ctx: RequestContext) -> videos_pb2.Video: ...

    async def download_video(self, upstream_id: str, variant: str, ctx: RequestContext) -> VideoContent: ...

    async def close(self) -> None: ...


class RelayChatProvider(Protocol):
    """A provider whose upstream speaks OpenAI's chat protocol: the gateway relays to it (the relay lane).

    The client's OpenAI body (`openai_body`, empty when a gRPC caller sent only `params`) goes up with
    only the gateway's own fields changed, and the answer comes back as the upstream wrote it: a
    completion as its JSON object, a stream as each event's bytes (or the parsed object of an event
    that carries usage). See `server/providers/openai_relay.py`.
    """

    async def relay_chat(
        self,
        params: chat_pb2.ChatCompletionParams,
        openai_body: bytes,
        upstream_model: str,
        ctx: RequestContext,
    ) -> JsonObject: ...

    def relay_stream_chat(
        self,
        params: chat_pb2.ChatCompletionParams,
        openai_body: bytes,
        upstream_model: str,
        ctx: RequestContext,
    ) -> AsyncIterator[bytes | JsonObject]: ...
