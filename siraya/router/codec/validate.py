"""The rules a request proto must meet before the gateway acts on it, whatever door it came in by.

A REST body is decoded to a proto (siraya/router/codec/*_request.py, ...) and then sent through the
same servicers a gRPC caller reaches; each servicer calls its family's `check_*` here on every
request, after authentication. So the two doors share one copy of each rule, and a refusal names
the same `param`, `code` and message on both.

The split with the JSON decoders: a decoder checks only what it needs to build the proto (JSON
types, keys that must be present, values the proto cannot hold such as an int beyond int32). Every
rule a proto itself can break (an empty `messages`, a role that is no role, an embedding without
input, a JSON schema that is not a JSON object) lives here and nowhere else. The decoders that also
read upstream replies (`decode_tool_call`, Responses items) keep their own guards for those replies.

Numeric bounds (temperature, n, dimensions, ...) are not here yet: see the bounds table of issue
#20 defect 6, which belongs beside these checks.

The checks run on the hot path: one call per request, loops without a call per item, and error
text built only when a rule fails.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import orjson

from siraya.router.codec.errors import CodecError
from siraya.router.v1 import (
    chat_pb2,
    common_pb2,
    embeddings_pb2,
    images_pb2,
    responses_pb2,
    videos_pb2,
)

__all__ = [
    "NOT_A_ROLE",
    "ParamsError",
    "check_chat_params",
    "check_embedding_params",
    "check_image_params",
    "check_response_params",
    "check_routing",
    "check_video_params",
    "check_watch_request",
    "invalid_seconds",
    "invalid_token_id",
    "missing",
]


class ParamsError(CodecError):
    """A request proto broke a rule here: always the caller's fault, so a servicer answers 400.

    Its own class because a bare CodecError can also come from decoding an upstream's reply.
    """


def missing(param: str) -> ParamsError:
    return ParamsError(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _invalid(param: str, expected: str) -> ParamsError:
    return ParamsError(f"Invalid value for '{param}': expected {expected}.", param)


def _invalid_type(param: str, expected: str) -> ParamsError:
    return ParamsError(f"Invalid type for '{param}': expected {expected}.", param, "invalid_type")


def _empty_model() -> ParamsError:
    # Missing entirely is the JSON decoder's to say; a proto cannot tell missing from empty.
    return ParamsError("'model' must not be empty.", "model")


def _is_json_object(data: bytes) -> bool:
    """Whether a `*_json` bytes field holds a JSON object (the decoders only ever write one)."""
    try:
        return type(orjson.loads(data)) is dict
    except orjson.JSONDecodeError:
        return False


# --- routing ----------------------------------------------------------------------------------

_SORTS = frozenset({"price", "latency", "throughput"})
_PROVIDER_LISTS = ("order", "only", "ignore")
_MAX_PRICE_KEYS = ("prompt", "completion", "image", "video_second")


def check_routing(routing: common_pb2.Routing) -> None:
    """The gateway's own routing fields, shared by every family (call it when `routing` is set)."""
    _check_names(routing.models, "models")
    if not routing.HasField("provider"):
        return
    provider = routing.provider
    for key in _PROVIDER_LISTS:
        _check_names(getattr(provider, key), f"provider.{key}")
    if provider.HasField("sort") and provider.sort not in _SORTS:
        raise _invalid("provider.sort", "'price', 'latency' or 'throughput'")
    if provider.HasField("max_price"):
        prices = provider.max_price
        for key in _MAX_PRICE_KEYS:
            # `not >=` also refuses NaN, which a proto double can carry.
            if prices.HasField(key) and not getattr(prices, key) >= 0:
                raise _invalid(f"provider.max_price.{key}", "a number >= 0")


def _check_names(names: Iterable[str], param: str) -> None:
    if names and not all(names):
        index = next(index for index, name in enumerate(names) if not name)
        raise _invalid(f"{param}[{index}]", "a non-empty string")


# --- chat -------------------------------------------------------------------------------------

NOT_A_ROLE = -1
"""The role the JSON decoder writes for a `role` that names no role: the check below refuses it,
with the same words a gRPC caller's out-of-range enum gets."""

_CONTENT_REQUIRED = frozenset(
    {
        chat_pb2.CHAT_ROLE_SYSTEM,
        chat_pb2.CHAT_ROLE_DEVELOPER,
        chat_pb2.CHAT_ROLE_USER,
        chat_pb2.CHAT_ROLE_TOOL,
    }
)
_CONTENT_OPTIONAL = frozenset({chat_pb2.CHAT_ROLE_ASSISTANT, chat_pb2.CHAT_ROLE_FUNCTION})
_TOOL_TYPES = frozenset({"", "function", "custom"})


def check_chat_params(params: chat_pb2.ChatCompletionParams) -> None:
    if not params.model:
        raise _empty_model()
    messages = params.messages
    if not messages:
        raise ParamsError("'messages' must contain at least one message.", "messages", "empty_array")
    index = 0
    for message in messages[:]:  # a slice: iterating upb's container ends in a formatted IndexError
        role = message.role
        content = message.WhichOneof("content")
        if role in _CONTENT_REQUIRED:
            if content is None:
                raise missing(f"messages[{index}].content")
        elif role not in _CONTENT_OPTIONAL:
            raise _bad_role(role, index)
        if content == "parts":
            _check_parts(message.parts.parts, index)
        if message.tool_calls:
            _check_tool_calls(message.tool_calls, index)
        index += 1
    if params.tools:
        _check_tools(params.tools)
    if params.functions:
        for position, function in enumerate(params.functions):
            _check_function(function, f"functions[{position}]")
    if params.HasField("function_call") and params.function_call.WhichOneof("kind") not in (
        "string_value",
        "struct_value",
    ):
        raise _invalid_type("function_call", "a string or an object")
    if params.HasField("response_format"):
        _check_response_format(params.response_format)
    if params.HasField("routing"):
        check_routing(params.routing)


def _bad_role(role: int, index: int) -> ParamsError:
    if role == chat_pb2.CHAT_ROLE_UNSPECIFIED:
        return missing(f"messages[{index}].role")
    return _invalid(
        f"messages[{index}].role",
        "one of 'system', 'developer', 'user', 'assistant', 'tool' or 'function'",
    )


def _check_parts(parts: Iterable[chat_pb2.ChatContentPart], index: int) -> None:
    for position, part in enumerate(parts):
        if part.WhichOneof("part") is None:
            raise missing(f"messages[{index}].content[{position}].type")


def _check_tool_calls(calls: Iterable[chat_pb2.ToolCall], index: int) -> None:
    for position, call in enumerate(calls):
        if call.type != "custom" and not call.HasField("function"):
            raise missing(f"messages[{index}].tool_calls[{position}].function")


def _check_tools(tools: Iterable[chat_pb2.ChatTool]) -> None:
    for position, tool in enumerate(tools):
        param = f"tools[{position}]"
        kind = tool.type
        if kind not in _TOOL_TYPES:
            raise _invalid(f"{param}.type", "'function' or 'custom'")
        if kind == "custom":
            if not tool.HasField("custom"):
                raise missing(f"{param}.custom")
        elif not tool.HasField("function"):
            raise missing(f"{param}.function")
        if tool.HasField("function"):
            _check_function(tool.function, f"{param}.function")


def _check_function(function: chat_pb2.FunctionDefinition, param: str) -> None:
    if function.HasField("parameters_json") and not _is_json_object(function.parameters_json):
        raise _invalid_type(f"{param}.parameters", "an object")


def _check_response_format(response_format: chat_pb2.ResponseFormat) -> None:
    if not response_format.HasField("json_schema"):
        if response_format.type == "json_schema":
            raise missing("response_format.json_schema")
        return
    # Checked whatever the type says: the encoders write a json_schema that is set.
    schema = response_format.json_schema
    if schema.HasField("schema_json") and not _is_json_object(schema.schema_json):
        raise _invalid_type("response_format.json_schema.schema", "an object")


# --- responses --------------------------------------------------------------------------------

_MESSAGE_ROLES = frozenset({"user", "assistant", "system", "developer"})
_TOOL_CHOICE_MODES = frozenset({"none", "auto", "required"})


def check_response_params(params: responses_pb2.ResponseParams) -> None:
    if not params.model:
        raise _empty_model()
    kind = params.WhichOneof("input")
    if kind is None:
        if not (
            params.HasField("previous_response_id")
            or params.HasField("prompt")
            or params.HasField("conversation")
        ):
            raise missing("input")
    elif kind == "input_items":
        _check_items(params.input_items.items)
    if params.HasField("conversation") and params.conversation.WhichOneof("kind") not in (
        "string_value",
        "struct_value",
    ):
        raise _invalid_type("conversation", "a string or an object")
    if params.tools:
        _check_response_tools(params.tools)
    if (
        params.tool_choice.WhichOneof("choice") == "mode"
        and params.tool_choice.mode not in _TOOL_CHOICE_MODES
    ):
        raise _invalid("tool_choice", "'none', 'auto', 'required' or an object")
    if params.HasField("text"):
        fmt = params.text.format
        if fmt.HasField("schema_json") and not _is_json_object(fmt.schema_json):
            raise _invalid_type("text.format.schema", "an object")
    if params.HasField("routing"):
        check_routing(params.routing)


def _check_items(items: Iterable[responses_pb2.ResponseItem]) -> None:
    # The JSON decoder (shared with upstream replies) already refuses these shapes in a body; a
    # gRPC caller's items meet the same rules here.
    for index, item in enumerate(items):
        kind = item.type
        if not kind:
            raise missing(f"input[{index}].type")
        if item.HasField("raw"):
            continue
        if kind == "message":
            if not item.HasField("role"):
                raise missing(f"input[{index}].role")
            if item.role not in _MESSAGE_ROLES:
                raise _invalid(f"input[{index}].role", "'user', 'assistant', 'system' or 'developer'")
        elif kind == "function_call":
            for key in ("call_id", "name", "arguments"):
                if not item.HasField(key):
                    raise missing(f"input[{index}].{key}")
        elif kind == "function_call_output":
            for key in ("call_id", "output"):
                if not item.HasField(key):
                    raise missing(f"input[{index}].{key}")


def _check_response_tools(tools: Iterable[responses_pb2.ResponseTool]) -> None:
    for position, tool in enumerate(tools):
        param = f"tools[{position}]"
        if not tool.type:
            raise missing(f"{param}.type")
        if tool.HasField("raw_json") and not _is_json_object(tool.raw_json):
            raise _invalid_type(param, "an object")
        if tool.HasField("parameters_json") and not _is_json_object(tool.parameters_json):
            raise _invalid_type(f"{param}.parameters", "an object")


# --- embeddings -------------------------------------------------------------------------------

_ENCODING_FORMATS = frozenset({"float", "base64"})


def invalid_token_id(param: str, index: int) -> ParamsError:
    """Also what the JSON decoder says for an item that is no integer at all."""
    return ParamsError(
        f"Invalid value for '{param}[{index}]': expected a token id (an integer >= 0); "
        "an input array must not mix types.",
        f"{param}[{index}]",
    )


def check_embedding_params(params: embeddings_pb2.EmbeddingParams) -> None:
    if not params.model:
        raise _empty_model()
    kind = params.WhichOneof("input")
    if kind == "text":
        if not params.text:
            raise ParamsError("'input' must not be an empty string.", "input")
    elif kind == "texts":
        texts = params.texts.values
        if not texts:
            raise _empty_input()
        if not all(texts):
            index = next(index for index, text in enumerate(texts) if not text)
            raise ParamsError(
                f"Invalid value for 'input[{index}]': every item of a string array must be a "
                "non-empty string.",
                f"input[{index}]",
            )
    elif kind == "tokens":
        ids = params.tokens.values
        if not ids:
            raise _empty_input()
        _check_token_ids(ids, "input")
    elif kind == "token_lists":
        lists = params.token_lists.values
        if not lists:
            raise _empty_input()
        for index, ids in enumerate(lists):
            if not ids.values:
                raise ParamsError(
                    f"Invalid value for 'input[{index}]': every item of an array of token arrays must "
                    "be a non-empty array of token ids.",
                    f"input[{index}]",
                )
            _check_token_ids(ids.values, f"input[{index}]")
    else:
        raise missing("input")
    if params.HasField("encoding_format") and params.encoding_format not in _ENCODING_FORMATS:
        raise _invalid("encoding_format", "'float' or 'base64'")
    if params.HasField("routing"):
        check_routing(params.routing)


def _empty_input() -> ParamsError:
    return ParamsError("'input' must not be an empty array.", "input")


def _check_token_ids(ids: Iterable[int], param: str) -> None:
    # `min` walks the ids in C; the index is looked for only when one is refused.
    if min(ids) < 0:
        raise invalid_token_id(param, next(index for index, token in enumerate(ids) if token < 0))


# --- images -----------------------------------------------------------------------------------

_IMAGE_RESPONSE_FORMATS = frozenset({"url", "b64_json"})


def check_image_params(params: images_pb2.ImageParams) -> None:
    if not params.prompt:
        raise ParamsError("'prompt' must not be empty.", "prompt")
    if not params.model:
        raise _empty_model()
    if params.HasField("response_format") and params.response_format not in _IMAGE_RESPONSE_FORMATS:
        raise _invalid("response_format", "'url' or 'b64_json'")
    if params.HasField("routing"):
        check_routing(params.routing)


# --- videos -----------------------------------------------------------------------------------


def invalid_seconds() -> ParamsError:
    """Also what the JSON decoder says for a `seconds` that is neither a string nor a number."""
    return ParamsError(
        "Invalid value for 'seconds': expected a whole number of seconds, such as \"8\".", "seconds"
    )


def check_video_params(params: videos_pb2.VideoParams) -> None:
    if not params.prompt:
        raise ParamsError("'prompt' must not be empty.", "prompt")
    if not params.model:
        raise _empty_model()
    if params.HasField("seconds"):
        seconds = params.seconds
        # ASCII digits only, not zero; read without int(), which refuses very long digit strings.
        if not (seconds.isascii() and seconds.isdigit() and seconds.strip("0")):
            raise invalid_seconds()
    if params.HasField("input_reference"):
        reference = params.input_reference
        given = reference.HasField("image_url") + reference.HasField("file_id")
        if reference.data and given:
            raise ParamsError(
                "Send 'input_reference' either as a file or as a reference, not both.", "input_reference"
            )
        if not reference.data and given != 1:
            raise ParamsError(
                "Invalid value for 'input_reference': provide exactly one of 'image_url' or 'file_id'.",
                "input_reference",
            )
    if params.HasField("routing"):
        check_routing(params.routing)


def check_watch_request(request: videos_pb2.WatchVideoRequest) -> None:
    """`poll_interval` is gRPC's alone: a NaN or an infinity would reach the poll loop's sleep."""
    if request.HasField("poll_interval") and not (
        math.isfinite(request.poll_interval) and request.poll_interval >= 0
    ):
        raise _invalid("poll_interval", "a finite number of seconds >= 0")
