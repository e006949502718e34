"""What a request may consume (Demand) and did consume (Consumption), read off the protos."""

from __future__ import annotations

from server.accounts.metering import Consumption, Demand
from siraya.router.codec.fields import JsonObject
from siraya.router.v1 import chat_pb2, common_pb2, embeddings_pb2, responses_pb2, videos_pb2

# A token is taken as four bytes of the encoded request: OpenAI's own rule of thumb. No tokenizer is
# used: tiktoken fetches its encodings from the internet on first use, which an offline or
# air-gapped gateway cannot, and it fits only OpenAI's models. The estimate only sizes the credit
# reservation and the tpm pre-check; both are settled to the upstream's reported usage.
BYTES_PER_TOKEN = 4
DEFAULT_MAX_OUTPUT_TOKENS = 4096
DEFAULT_VIDEO_SECONDS = 4.0


def estimate_tokens(byte_count: int) -> int:
    return -(-byte_count // BYTES_PER_TOKEN)


def chat_demand(params: chat_pb2.ChatCompletionParams) -> Demand:
    if params.HasField("max_completion_tokens"):
        max_output = params.max_completion_tokens
    elif params.HasField("max_tokens"):
        max_output = params.max_tokens
    else:
        max_output = DEFAULT_MAX_OUTPUT_TOKENS
    choices = params.n if params.HasField("n") and params.n > 0 else 1
    return Demand(
        prompt_tokens=estimate_tokens(params.ByteSize()),
        max_output_tokens=max_output * choices,
        params=params,
    )


def response_demand(params: responses_pb2.ResponseParams) -> Demand:
    max_output = (
        params.max_output_tokens if params.HasField("max_output_tokens") else DEFAULT_MAX_OUTPUT_TOKENS
    )
    return Demand(
        prompt_tokens=estimate_tokens(params.ByteSize()), max_output_tokens=max_output, params=params
    )


def embedding_demand(params: embeddings_pb2.EmbeddingParams) -> Demand:
    return Demand(prompt_tokens=estimate_tokens(params.ByteSize()), params=params)


def video_seconds(params: videos_pb2.VideoParams) -> float:
    try:
        return float(params.seconds) if params.HasField("seconds") else DEFAULT_VIDEO_SECONDS
    except ValueError:
        return DEFAULT_VIDEO_SECONDS


def usage_consumption(usage: common_pb2.Usage) -> Consumption:
    return Consumption(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.prompt_tokens_details.cached_tokens,
        reasoning_tokens=usage.completion_tokens_details.reasoning_tokens,
    )


def response_consumption(usage: responses_pb2.ResponseUsage) -> Consumption:
    return Consumption(
        prompt_tokens=usage.input_tokens,
        completion_tokens=usage.output_tokens,
        cached_tokens=usage.cached_tokens,
        reasoning_tokens=usage.reasoning_tokens,
    )


def _replace_counts(total: Consumption, counted: Consumption) -> None:
    """The upstream's reported usage replaces what was counted so far."""
    total.prompt_tokens = counted.prompt_tokens
    total.completion_tokens = counted.completion_tokens
    total.cached_tokens = counted.cached_tokens
    total.reasoning_tokens = counted.reasoning_tokens


def fold_chunk(chunk: chat_pb2.ChatCompletionChunk, total: Consumption) -> None:
    """Upstream usage replaces the running count; until it arrives, each content delta counts."""
    if chunk.HasField("usage"):
        _replace_counts(total, usage_consumption(chunk.usage))
        return
    for choice in chunk.choices:
        delta = choice.delta
        size = len(delta.content) + len(delta.reasoning)
        for call in delta.tool_calls:
            size += len(call.function.arguments) + len(call.function.name)
        if size:
            total.completion_tokens += estimate_tokens(size)


def usage_consumption_json(usage: JsonObject | None) -> Consumption:
    """`usage_consumption` of a usage kept as OpenAI's JSON object (the normalizers' form)."""
    if usage is None:
        return Consumption()
    prompt = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}
    return Consumption(
        prompt_tokens=usage["prompt_tokens"],
        completion_tokens=usage["completion_tokens"],
        cached_tokens=prompt.get("cached_tokens", 0),
        reasoning_tokens=completion.get("reasoning_tokens", 0),
    )


def fold_chunk_json(chunk: JsonObject, total: Consumption) -> None:
    """`fold_chunk` for a chunk kept as OpenAI's JSON object (normalize_chat_chunk's form)."""
    usage = chunk.get("usage")
    if usage is not None:
        _replace_counts(total, usage_consumption_json(usage))
        return
    for choice in chunk["choices"]:
        delta = choice["delta"]
        size = len(delta.get("content") or "") + len(delta.get("reasoning") or "")
        for call in delta.get("tool_calls", ()):
            function = call.get("function") or call.get("custom") or {}
            size += len(function.get("arguments") or function.get("input") or "")
            size += len(function.get("name") or "")
        if size:
            total.completion_tokens += estimate_tokens(size)


def fold_response_event(event: responses_pb2.ResponseStreamEvent, total: Consumption) -> None:
    if event.HasField("response") and event.response.HasField("usage"):
        _replace_counts(total, response_consumption(event.response.usage))
    elif event.HasField("delta"):
        total.completion_tokens += estimate_tokens(len(event.delta))


def chunk_usage(chunk: chat_pb2.ChatCompletionChunk) -> common_pb2.Usage | None:
    """The upstream's final usage, if this is the usage chunk (OpenAI's has no choices).

    Some upstreams repeat running usage on content chunks; those are folded, and charged at the end.
    """
    return chunk.usage if chunk.HasField("usage") and not chunk.choices else None


def chunk_usage_json(chunk: JsonObject) -> JsonObject | None:
    """`chunk_usage` for a chunk kept as OpenAI's JSON object."""
    usage = chunk.get("usage")
    return usage if usage is not None and not chunk["choices"] else None


def event_usage(event: responses_pb2.ResponseStreamEvent) -> responses_pb2.ResponseUsage | None:
    """The upstream's final usage, if this event carries the finished response (completed, incomplete)."""
    if event.HasField("response") and event.response.HasField("usage"):
        return event.response.usage
    return None
