"""What a request may consume (Demand) and did consume (Consumption), read off the protos."""

from __future__ import annotations

from itertools import groupby

import orjson

from server import tokens
from server.accounts.metering import Consumption, Demand, StreamText
from server.accounts.money import usd_to_micros
from server.accounts.prompt_bound import prompt_shape
from siraya.router.codec.fields import JsonObject
from siraya.router.v1 import chat_pb2, common_pb2, embeddings_pb2, responses_pb2, videos_pb2

# A token is taken as four bytes of the encoded request: OpenAI's own rule of thumb, cheap enough for
# every request. It sizes only the tpm pre-check (settled to the upstream's reported usage) and a
# stream's running count of its text (counted with the tokenizer if no usage replaces it). The
# credit reservation does not use it: it bounds the prompt from above
# (server/accounts/prompt_bound.py, with the real tokenizer when it must).
BYTES_PER_TOKEN = 4
# A stream's kept text is joined into one block every so many pieces: a long answer then costs
# about its own size in memory, not an object per chunk.
PIECES_PER_BLOCK = 64
DEFAULT_MAX_OUTPUT_TOKENS = 4096
DEFAULT_VIDEO_SECONDS = 4.0


def estimate_tokens(byte_count: int) -> int:
    return -(-byte_count // BYTES_PER_TOKEN)


def counted_tokens(text_length: int, texts: list[str]) -> int:
    """Tokens of a reply the upstream gave no usage for, counted with the real tokenizer (offline)."""
    if not text_length:
        return 0
    encoding = tokens.encoding(tokens.DEFAULT_ENCODING)
    return sum(len(encoding.encode_ordinary(text)) for text in texts)


def count_prompt(total: Consumption, demand: Demand) -> None:
    """The prompt of a request whose upstream reported no usage, counted by the gateway: the request's
    text with the real tokenizer, plus the fixed allowances for images and framing
    (server/accounts/prompt_bound.py); the quick estimate when the request is not at hand."""
    params = demand.params
    if params is None:
        total.prompt_tokens = demand.prompt_tokens
    else:
        total.prompt_tokens = prompt_shape(params).counted_bound(((tokens.DEFAULT_ENCODING, 1.0),))
    total.counted = True


def chat_demand(params: chat_pb2.ChatCompletionParams) -> Demand:
    given = True
    if params.HasField("max_completion_tokens"):
        max_output = params.max_completion_tokens
    elif params.HasField("max_tokens"):
        max_output = params.max_tokens
    else:
        max_output, given = DEFAULT_MAX_OUTPUT_TOKENS, False
    choices = params.n if params.HasField("n") and params.n > 0 else 1
    return Demand(
        prompt_tokens=estimate_tokens(params.ByteSize()),
        max_output_tokens=max_output * choices,
        params=params,
        max_output_given=given,
        choices=choices,
    )


def response_demand(params: responses_pb2.ResponseParams) -> Demand:
    given = params.HasField("max_output_tokens")
    max_output = params.max_output_tokens if given else DEFAULT_MAX_OUTPUT_TOKENS
    return Demand(
        prompt_tokens=estimate_tokens(params.ByteSize()),
        max_output_tokens=max_output,
        params=params,
        max_output_given=given,
    )


def embedding_demand(params: embeddings_pb2.EmbeddingParams) -> Demand:
    return Demand(prompt_tokens=estimate_tokens(params.ByteSize()), params=params)


def video_seconds(params: videos_pb2.VideoParams) -> float:
    try:
        return float(params.seconds) if params.HasField("seconds") else DEFAULT_VIDEO_SECONDS
    except ValueError:
        return DEFAULT_VIDEO_SECONDS


def usage_consumption(usage: common_pb2.Usage) -> Consumption:
    prompt = usage.prompt_tokens_details
    completion = usage.completion_tokens_details
    return Consumption(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=prompt.cached_tokens,
        reasoning_tokens=completion.reasoning_tokens,
        cache_write_tokens=prompt.cache_creation_tokens,
        audio_prompt_tokens=prompt.audio_tokens,
        audio_completion_tokens=completion.audio_tokens,
    )


def response_consumption(usage: responses_pb2.ResponseUsage) -> Consumption:
    return Consumption(
        prompt_tokens=usage.input_tokens,
        completion_tokens=usage.output_tokens,
        cached_tokens=usage.cached_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        # The upstream's own figure, decoded from its `usage.cost` (the gateway's replaces it later).
        reported_cost_micros=reported_cost(usage.cost) if usage.HasField("cost") else None,
    )


def reported_cost(usd: object) -> int | None:
    """An upstream's `usage.cost` (USD) in micro-dollars; None for anything but a finite number."""
    if type(usd) not in (int, float) or usd != usd or usd in (float("inf"), float("-inf")):
        return None
    return usd_to_micros(usd)  # type: ignore[arg-type]


def _replace_counts(total: Consumption, counted: Consumption) -> None:
    """The upstream's reported usage replaces what was counted so far."""
    total.prompt_tokens = counted.prompt_tokens
    total.prompt_reported = True
    total.completion_tokens = counted.completion_tokens
    total.cached_tokens = counted.cached_tokens
    total.reasoning_tokens = counted.reasoning_tokens
    total.cache_write_tokens = counted.cache_write_tokens
    total.audio_prompt_tokens = counted.audio_prompt_tokens
    total.audio_completion_tokens = counted.audio_completion_tokens
    total.reported_cost_micros = counted.reported_cost_micros
    total.stream_text = None


# --- streams ------------------------------------------------------------------------------------
#
# Each `fold_*` folds one stream item into the running consumption and returns the usage the item
# carries, or None (most items). A usage replaces the running count: the final one (OpenAI's usage
# chunk, with no choices, or the Responses stream's finished response) settles the stream; one on
# a chunk with choices is running usage (Anthropic's and Gemini's prompt count on their first chunk,
# or an upstream that puts its usage on the finish chunk), and the chunk's own text still counts.
#
# Text no usage covers yet counts as an estimate (`estimate_text`, no tokenizer on the way) and is
# kept; a usage drops it. A stream that ends without a usage for all of its text (cut, cancelled,
# an upstream that sends none) has that text counted with the tokenizer when it settles
# (`count_stream_text`, from server/attempt_spend.py), in place of the estimate.


def estimate_text(total: Consumption, text: str | bytes) -> None:
    """Count a stream's `text` (a relayed piece: bytes as written) as the running estimate, and keep it
    for `count_stream_text`."""
    estimate = -(-len(text) // BYTES_PER_TOKEN)
    total.completion_tokens += estimate
    kept = total.stream_text
    if kept is None:
        kept = total.stream_text = StreamText()
    kept.estimated += estimate
    pieces = kept.pieces
    pieces.append(text)
    if len(pieces) == PIECES_PER_BLOCK:
        kept.blocks.append(_block(pieces))
        pieces.clear()


def count_stream_text(total: Consumption) -> None:
    """Settle the text of a stream that no usage covered: its tokens as the tokenizer counts the whole
    of it (once: the estimate per piece is dropped), and the consumption marked counted."""
    kept = total.stream_text
    if kept is None:
        return
    total.stream_text = None
    text = _joined(kept.blocks + kept.pieces)
    total.completion_tokens += counted_tokens(len(text), [text]) - kept.estimated
    total.counted = True


def _block(pieces: list[str | bytes]) -> str | bytes:
    """Pieces of one kind as one (relayed bytes are decoded only if they come to be counted)."""
    try:
        return b"".join(pieces) if type(pieces[0]) is bytes else "".join(pieces)  # type: ignore[arg-type]
    except TypeError:  # str and bytes both
        return _joined(pieces)


def _joined(pieces: list[str | bytes]) -> str:
    """The text of pieces of either kind."""
    return "".join(
        "".join(run) if kind is str else _unescaped(b"".join(run))  # type: ignore[arg-type]
        for kind, run in groupby(pieces, type)
    )


def _unescaped(relayed: bytes) -> str:
    """The text of relayed JSON string contents (escapes as written)."""
    try:
        text: str = orjson.loads(b'"' + relayed + b'"')
    except orjson.JSONDecodeError:  # a broken escape (a lone surrogate): the rest is still text
        return relayed.decode(errors="replace")
    return text


def fold_chunk(chunk: chat_pb2.ChatCompletionChunk, total: Consumption) -> common_pb2.Usage | None:
    usage = None
    if chunk.HasField("usage"):
        usage = chunk.usage
        _replace_counts(total, usage_consumption(usage))
    for choice in chunk.choices:
        delta = choice.delta
        text = delta.reasoning + delta.content
        for call in delta.tool_calls:
            text += call.function.name + call.function.arguments
        if delta.HasField("function_call"):
            text += delta.function_call.name + delta.function_call.arguments
        if text:
            estimate_text(total, text)
    return usage


def usage_consumption_json(usage: JsonObject) -> Consumption:
    """`usage_consumption` of a usage kept as OpenAI's JSON object (a relayed answer's, checked by
    `openai_relay.valid_usage`: counts are integers or absent)."""
    prompt = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}
    cost = usage.get("cost")
    return Consumption(
        prompt_tokens=usage.get("prompt_tokens") or 0,
        completion_tokens=usage.get("completion_tokens") or 0,
        cached_tokens=prompt.get("cached_tokens") or 0,
        reasoning_tokens=completion.get("reasoning_tokens") or 0,
        cache_write_tokens=prompt.get("cache_write_tokens") or 0,
        audio_prompt_tokens=prompt.get("audio_tokens") or 0,
        audio_completion_tokens=completion.get("audio_tokens") or 0,
        reported_cost_micros=None if cost is None else reported_cost(cost),
    )


# The string keys of a message or delta whose text the answer is made of.
_TEXT_KEYS = ("content", "reasoning", "reasoning_content")
_CALL_TEXT_KEYS = ("name", "arguments", "input")


def answer_texts(choices: object, part: str) -> list[str]:
    """The answer's texts in the choices of a JSON completion (`part="message"`) or chunk (`"delta"`):
    content, reasoning, tool-call names and arguments, a custom tool's input.

    It reads an upstream's JSON as it came, so anything of an unexpected type is skipped, not trusted.
    """
    texts: list[str] = []
    if type(choices) is not list:
        return texts
    for choice in choices:
        body = choice.get(part) if type(choice) is dict else None
        if type(body) is not dict:
            continue
        texts += (value for key in _TEXT_KEYS if type(value := body.get(key)) is str)
        calls = body.get("tool_calls")
        for call in calls if type(calls) is list else ():
            if type(call) is dict:
                texts += _call_texts(call.get("function") or call.get("custom"))
        texts += _call_texts(body.get("function_call"))
    return texts


def _call_texts(call: object) -> list[str]:
    if type(call) is not dict:
        return []
    return [value for key in _CALL_TEXT_KEYS if type(value := call.get(key)) is str]


def fold_chunk_json(chunk: JsonObject, total: Consumption) -> JsonObject | None:
    """`fold_chunk` for a chunk kept as OpenAI's JSON object (a relayed chunk that was parsed)."""
    usage = chunk.get("usage")
    if usage is not None:
        _replace_counts(total, usage_consumption_json(usage))
    text = "".join(answer_texts(chunk.get("choices"), "delta"))
    if text:
        estimate_text(total, text)
    return usage


# The events whose response carries the stream's final usage. `response.failed` may carry usage
# too, but the error that follows it decides the request's outcome.
_FINISHED_EVENTS = frozenset(("response.completed", "response.incomplete"))


def fold_response_event(
    event: responses_pb2.ResponseStreamEvent, total: Consumption
) -> responses_pb2.ResponseUsage | None:
    if event.HasField("delta"):
        if text := event.delta:
            estimate_text(total, text)
    elif event.HasField("response") and event.response.HasField("usage") and event.type in _FINISHED_EVENTS:
        usage = event.response.usage
        _replace_counts(total, response_consumption(usage))
        return usage
    return None


def chunk_is_final(chunk: chat_pb2.ChatCompletionChunk) -> bool:
    """Whether a chunk carrying usage is the upstream's usage chunk (OpenAI's has no choices)."""
    return not chunk.choices


def chunk_is_final_json(chunk: JsonObject) -> bool:
    return not chunk.get("choices")


def strip_usage(chunk: chat_pb2.ChatCompletionChunk, shown: bool) -> common_pb2.Usage:
    """Take running usage off a chunk (the client sees usage on the usage chunk only); a copy of it."""
    usage = common_pb2.Usage()
    usage.CopyFrom(chunk.usage)
    chunk.ClearField("usage")
    return usage


def strip_usage_json(chunk: JsonObject, shown: bool) -> JsonObject:
    """`strip_usage` for a JSON chunk: `usage: null` stays where OpenAI writes it when `shown`."""
    usage: JsonObject = chunk["usage"]
    if shown:
        chunk["usage"] = None
    else:
        del chunk["usage"]
    return usage


def usage_chunk(like: chat_pb2.ChatCompletionChunk, usage: common_pb2.Usage) -> chat_pb2.ChatCompletionChunk:
    """OpenAI's usage chunk, for an upstream that sent its usage on another chunk."""
    chunk = chat_pb2.ChatCompletionChunk(
        id=like.id, object=like.object, created=like.created, model=like.model
    )
    if like.HasField("system_fingerprint"):
        chunk.system_fingerprint = like.system_fingerprint
    if like.HasField("service_tier"):
        chunk.service_tier = like.service_tier
    chunk.usage.CopyFrom(usage)
    return chunk


def usage_chunk_json(like: JsonObject, usage: JsonObject) -> JsonObject:
    """`usage_chunk` in OpenAI's JSON, keys in OpenAI's order."""
    out: JsonObject = {
        "id": like.get("id"),
        "object": like.get("object") or "chat.completion.chunk",
        "created": like.get("created"),
        "model": like.get("model"),
    }
    for key in ("service_tier", "system_fingerprint"):
        if key in like:
            out[key] = like[key]
    out["choices"] = []
    out["usage"] = usage
    return out


def event_is_final(event: responses_pb2.ResponseStreamEvent) -> bool:
    """Every usage `fold_response_event` returns is the finished response's."""
    return True


# --- unary answers --------------------------------------------------------------------------
#
# When an upstream reports no usage at all, the gateway counts the prompt and the answer's text with
# the real tokenizer (`count_prompt`, `counted_tokens`) and marks the consumption `counted`: the
# fallback, never used when usage was sent. A stream that ends without usage is counted the same way
# when it settles (`count_stream_text`).


def completion_consumption(completion: chat_pb2.ChatCompletion, demand: Demand) -> Consumption:
    if completion.HasField("usage"):
        return usage_consumption(completion.usage)
    texts: list[str] = []
    for choice in completion.choices:
        message = choice.message
        texts += (message.content, message.reasoning)
        for call in message.tool_calls:
            texts += (call.function.arguments, call.function.name, call.custom_input)
        if message.HasField("function_call"):
            texts += (message.function_call.arguments, message.function_call.name)
    return _counted(demand, texts)


def completion_consumption_json(completion: JsonObject, demand: Demand) -> Consumption:
    usage = completion.get("usage")
    if usage is not None:
        return usage_consumption_json(usage)
    return _counted(demand, answer_texts(completion.get("choices"), "message"))


def response_answer_consumption(response: responses_pb2.Response, demand: Demand) -> Consumption:
    if response.HasField("usage"):
        return response_consumption(response.usage)
    texts: list[str] = []
    for item in response.output:
        texts += (item.arguments, item.content_text)
        texts += (part.text for part in item.content)
        texts += (summary.text for summary in item.summary)
    return _counted(demand, texts)


def embedding_consumption(result: embeddings_pb2.EmbeddingList, demand: Demand) -> Consumption:
    """Gemini's batchEmbedContents reports no token count: the gateway counts the input itself."""
    if result.HasField("usage"):
        return usage_consumption(result.usage)
    total = Consumption()
    count_prompt(total, demand)
    return total


def _counted(demand: Demand, texts: list[str]) -> Consumption:
    """The consumption of an answer that came without usage: its prompt and reply counted here."""
    total = Consumption(completion_tokens=counted_tokens(sum(map(len, texts)), [t for t in texts if t]))
    count_prompt(total, demand)
    return total
