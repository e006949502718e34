"""too_deep: the nesting measured exactly (the body is level 1), whatever mix of arrays and objects."""

from __future__ import annotations

from typing import Any

import pytest

from http_bridge.json_depth import too_deep
from server.config import LimitsConfig
from siraya.router.codec.chat_request import decode_chat_request
from siraya.router.codec.responses_request import decode_response_request
from siraya.router.v1 import chat_pb2, responses_pb2


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def objects(levels: int, leaf: Any = 1) -> Any:
    for _ in range(levels):
        leaf = {"a": leaf}
    return leaf


def arrays(levels: int, leaf: Any = 1) -> Any:
    for _ in range(levels):
        leaf = [leaf]
    return leaf


SHAPES = [
    lambda n: {"k": objects(n)},
    lambda n: {"k": arrays(n)},
    lambda n: {"k": arrays(n, {})},
    lambda n: {"first": [1, {"b": "x"}], "k": [0, {"x": arrays(n)}], "z": None},
    lambda n: {"k": {"a": [objects(n // 2, arrays(n - n // 2))]}},
]


@pytest.mark.parametrize("limit", [1, 2, 3, 8, 32])
@pytest.mark.parametrize("shape", range(len(SHAPES)))
def test_too_deep_agrees_with_the_exact_depth(limit: int, shape: int) -> None:
    for levels in range(0, 40):
        body = SHAPES[shape](levels)
        found = too_deep(body, limit)
        assert (found is not None) == (depth(body) > limit), (limit, levels)
        if found is not None:
            assert 1 + depth(body[found]) > limit  # the key named is one whose value is too deep


def test_a_wide_shallow_body_is_fine() -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}] * 5000}
    # body, messages, a message, its content, a part: five levels.
    assert too_deep(body, 5) is None
    assert too_deep(body, 4) == "messages"


def _chat(body: dict[str, Any]) -> bytes:
    request = chat_pb2.CreateChatCompletionRequest(params=decode_chat_request(body))
    return chat_pb2.CreateChatCompletionRequest.FromString(request.SerializeToString()).SerializeToString()


def _response(body: dict[str, Any]) -> bytes:
    request = responses_pb2.CreateResponseRequest(params=decode_response_request(body))
    return responses_pb2.CreateResponseRequest.FromString(request.SerializeToString()).SerializeToString()


CHAT = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
RESPONSE = {"model": "m", "input": "x"}
# Where free-form JSON becomes a protobuf Struct, at the shallowest body level each can start.
PLACES = [
    (_chat, lambda value: {**CHAT, "unknown": value}),
    (_chat, lambda value: {**CHAT, "prediction": {"a": value}}),
    (
        _chat,
        lambda value: {**CHAT, "tool_choice": {"type": "function", "function": {"name": "f"}, "x": value}},
    ),
    (_response, lambda value: {**RESPONSE, "unknown": value}),
    (_response, lambda value: {**RESPONSE, "input": [{"type": "mystery", "x": value}]}),
    (
        _response,
        lambda value: {
            **RESPONSE,
            "input": [{"type": "function_call_output", "call_id": "c", "output": "o", "x": value}],
        },
    ),
]


@pytest.mark.parametrize("place", range(len(PLACES)))
def test_a_body_at_the_default_limit_still_crosses_grpc(place: int) -> None:
    """The default limit is below what protobuf parses: a body the bridge accepts crosses the gRPC hop."""
    limit = LimitsConfig().max_json_depth
    encode, build = PLACES[place]
    for nest in (objects, arrays):
        levels = 0
        while depth(build(nest(levels + 1))) <= limit:
            levels += 1
        body = build(nest(levels))
        assert depth(body) == limit and too_deep(body, limit) is None
        encode(body)  # parses again on the far side of the hop; raises if protobuf refuses it
