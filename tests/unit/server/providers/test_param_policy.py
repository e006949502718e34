"""The parameter policy: drop only what cannot change the output, refuse the rest by name."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import InvalidRequest
from server.providers.param_policy import (
    CHAT_FIELDS,
    CONTENT_PART_KINDS,
    DROPPABLE_CHAT_FIELDS,
    FULL_CHAT_SUPPORT,
    ParameterSupport,
    enforce_chat_support,
    present_chat_fields,
    requires_parameters,
    unsupported_chat_fields,
)
from siraya.router.v1 import chat_pb2

USER = chat_pb2.CHAT_ROLE_USER
# A small native adapter: sampling, length and tools, text and images only.
NARROW = ParameterSupport(
    supported=frozenset(
        {"temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "tools", "image_url"}
    )
)
NOTHING = ParameterSupport(supported=frozenset())


def _params(**fields: Any) -> chat_pb2.ChatCompletionParams:
    return chat_pb2.ChatCompletionParams(
        model="m", messages=[chat_pb2.ChatMessage(role=USER, text="hi")], **fields
    )


def _with_parts(*parts: chat_pb2.ChatContentPart) -> chat_pb2.ChatCompletionParams:
    params = _params()
    params.messages.append(
        chat_pb2.ChatMessage(role=USER, parts=chat_pb2.ChatContentParts(parts=list(parts)))
    )
    return params


TEXT = chat_pb2.ChatContentPart(text=chat_pb2.TextPart(text="look"))
IMAGE = chat_pb2.ChatContentPart(image_url=chat_pb2.ImageUrlPart(url="https://example.com/a.png"))
AUDIO = chat_pb2.ChatContentPart(input_audio=chat_pb2.InputAudioPart(data="AAAA", format="wav"))
FILE = chat_pb2.ChatContentPart(file=chat_pb2.FilePart(file_id="file-1"))


def _refusal(error: pytest.ExceptionInfo[InvalidRequest], param: str) -> str:
    assert error.value.param == param
    assert error.value.code == "unsupported_parameter"
    assert error.value.kind.http_status == 400
    return error.value.message


# --- present_chat_fields --------------------------------------------------------------------------


def test_present_fields_follow_proto3_presence() -> None:
    params = _params(temperature=0.0, n=1, stream=True, user="u")
    params.metadata["k"] = "v"
    params.stream_options.SetInParent()
    params.extra_body.update({"x": 1})
    params.routing.models.append("other")
    # temperature 0 is set; model, messages, stream, routing and extra_body are not parameters.
    assert present_chat_fields(params) == ["temperature", "n", "user", "metadata", "stream_options"]


def test_present_fields_skip_unset_and_empty() -> None:
    params = _params()
    params.stop.extend([])
    assert present_chat_fields(params) == []
    assert present_chat_fields(chat_pb2.ChatCompletionParams()) == []


# --- droppable fields -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"user": "u-1"},
        {"safety_identifier": "s"},
        {"metadata": {"k": "v"}},
        {"store": True},
        {"service_tier": "flex"},
        {"prompt_cache_key": "k"},
        {"prompt_cache_retention": "24h"},
        {"seed": 42},
    ],
)
def test_drops_bookkeeping_fields(fields: dict[str, Any]) -> None:
    params = _params(**fields)
    assert enforce_chat_support(params, NOTHING) == list(fields)
    assert unsupported_chat_fields(params, NOTHING) == []


def test_drops_prediction() -> None:
    params = _params()
    params.prediction.update({"type": "content", "content": "draft"})
    assert enforce_chat_support(params, NARROW) == ["prediction"]


def test_returns_every_dropped_field_in_field_order() -> None:
    params = _params(temperature=0.5, user="u", seed=1, store=False)
    assert enforce_chat_support(params, NARROW) == ["seed", "user", "store"]


def test_supported_droppable_fields_are_kept() -> None:
    support = ParameterSupport(supported=frozenset({"user", "seed"}))
    assert enforce_chat_support(_params(user="u", seed=1), support) == []
    assert enforce_chat_support(_params(user="u", seed=1), support, require_parameters=True) == []


def test_droppable_set_is_only_bookkeeping() -> None:
    assert DROPPABLE_CHAT_FIELDS <= CHAT_FIELDS
    for meaningful in (
        "logit_bias",
        "temperature",
        "parallel_tool_calls",
        "reasoning_effort",
        "stream_options",
    ):
        assert meaningful not in DROPPABLE_CHAT_FIELDS


# --- no-op values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"n": 1},
        {"presence_penalty": 0.0},
        {"frequency_penalty": 0.0},
        {"logprobs": False},
        {"top_logprobs": 0},
        {"parallel_tool_calls": True},
        {"modalities": ["text"]},
        {"logit_bias": {"50256": 0}},
        {"store": False},
    ],
)
@pytest.mark.parametrize("require_parameters", [False, True])
def test_drops_no_op_values_even_when_parameters_are_required(
    fields: dict[str, Any], require_parameters: bool
) -> None:
    params = _params(**fields)
    assert enforce_chat_support(params, NOTHING, require_parameters=require_parameters) == list(fields)
    assert unsupported_chat_fields(params, NOTHING, require_parameters=require_parameters) == []


def test_stream_options_without_usage_is_a_no_op() -> None:
    params = _params()
    params.stream_options.include_obfuscation = False
    assert enforce_chat_support(params, NOTHING, require_parameters=True) == ["stream_options"]


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"n": 2}, "n"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": -0.1}, "frequency_penalty"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"reasoning_effort": "high"}, "reasoning_effort"),
        ({"verbosity": "low"}, "verbosity"),
        ({"audio": chat_pb2.AudioOutputParams(voice="alloy", format="wav")}, "audio"),
        ({"response_format": chat_pb2.ResponseFormat(type="json_object")}, "response_format"),
        ({"tool_choice": chat_pb2.ToolChoice(mode="required")}, "tool_choice"),
        ({"functions": [chat_pb2.FunctionDefinition(name="f")]}, "functions"),
        ({"stream_options": chat_pb2.StreamOptions(include_usage=True)}, "stream_options"),
    ],
)
def test_refuses_meaningful_unsupported_fields(fields: dict[str, Any], name: str) -> None:
    params = _params(**fields)
    with pytest.raises(InvalidRequest) as error:
        enforce_chat_support(params, NARROW, provider="anthropic")
    assert _refusal(error, name) == f"The parameter '{name}' is not supported by provider 'anthropic'."
    assert unsupported_chat_fields(params, NARROW) == [name]


def test_parallel_tool_calls_false_is_honoured_by_the_gateway_not_refused() -> None:
    # The adapter keeps the first tool call (tool_call_limit.py): never a gap, even when required.
    params = _params(parallel_tool_calls=False)
    assert enforce_chat_support(params, NARROW, provider="gemini") == ["parallel_tool_calls"]
    assert unsupported_chat_fields(params, NARROW, require_parameters=True) == []


def test_refuses_struct_fields() -> None:
    params = _params()
    params.web_search_options.update({"search_context_size": "low"})
    with pytest.raises(InvalidRequest) as error:
        enforce_chat_support(params, NARROW)
    assert _refusal(error, "web_search_options") == (
        "The parameter 'web_search_options' is not supported by this provider."
    )


def test_supported_fields_pass_whatever_their_value() -> None:
    params = _params(temperature=0.0, top_p=1.0, max_tokens=5, stop=["\n"])
    params.tools.append(chat_pb2.ChatTool(type="function", function=chat_pb2.FunctionDefinition(name="f")))
    assert enforce_chat_support(params, NARROW, require_parameters=True) == []


def test_names_the_first_gap_in_field_order() -> None:
    params = _params(n=3, logit_bias={"1": 5}, user="u")
    with pytest.raises(InvalidRequest) as error:
        enforce_chat_support(params, NARROW)
    _refusal(error, "n")
    assert unsupported_chat_fields(params, NARROW) == ["n", "logit_bias"]


# --- require_parameters ---------------------------------------------------------------------------


def test_require_parameters_refuses_droppable_fields() -> None:
    params = _params(user="u", seed=7)
    with pytest.raises(InvalidRequest) as error:
        enforce_chat_support(params, NARROW, require_parameters=True, provider="gemini")
    assert _refusal(error, "seed") == (
        "The parameter 'seed' is not supported by provider 'gemini' (provider.require_parameters is set)."
    )
    assert unsupported_chat_fields(params, NARROW, require_parameters=True) == ["seed", "user"]
    assert unsupported_chat_fields(params, NARROW) == []


def test_requires_parameters_reads_the_routing_preference() -> None:
    params = _params()
    assert requires_parameters(params) is False
    params.routing.provider.require_parameters = True
    assert requires_parameters(params) is True


# --- content parts --------------------------------------------------------------------------------


@pytest.mark.parametrize(("part", "kind"), [(AUDIO, "input_audio"), (FILE, "file")])
@pytest.mark.parametrize("require_parameters", [False, True])
def test_refuses_unsupported_content_parts(
    part: chat_pb2.ChatContentPart, kind: str, require_parameters: bool
) -> None:
    params = _with_parts(TEXT, IMAGE, part)
    with pytest.raises(InvalidRequest) as error:
        enforce_chat_support(params, NARROW, require_parameters=require_parameters, provider="p")
    assert _refusal(error, "messages[1].content[2]") == (
        f"The content part type '{kind}' is not supported by provider 'p'."
    )


def test_refuses_image_parts_without_image_support() -> None:
    support = ParameterSupport(supported=frozenset({"input_audio", "file"}))
    with pytest.raises(InvalidRequest) as error:
        enforce_chat_support(_with_parts(IMAGE, AUDIO, FILE), support)
    _refusal(error, "messages[1].content[0]")


def test_accepts_supported_parts_and_text_only_messages() -> None:
    assert enforce_chat_support(_with_parts(TEXT, IMAGE), NARROW) == []
    assert enforce_chat_support(_with_parts(TEXT, IMAGE, AUDIO, FILE), FULL_CHAT_SUPPORT) == []
    assert enforce_chat_support(_with_parts(TEXT), NOTHING) == []


def test_lists_field_and_part_gaps_together() -> None:
    params = _with_parts(AUDIO, TEXT, FILE)
    params.n = 4
    assert unsupported_chat_fields(params, NARROW) == [
        "n",
        "messages[1].content[0]",
        "messages[1].content[2]",
    ]


# --- support declarations -------------------------------------------------------------------------


def test_full_support_covers_every_field_and_part() -> None:
    params = _params(n=4, logit_bias={"1": 5}, user="u", reasoning_effort="high")
    assert enforce_chat_support(params, FULL_CHAT_SUPPORT, require_parameters=True) == []
    assert FULL_CHAT_SUPPORT.supported == CHAT_FIELDS | CONTENT_PART_KINDS
    assert "model" not in CHAT_FIELDS and "routing" not in CHAT_FIELDS and "stream" not in CHAT_FIELDS


def test_support_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="max_token, routing"):
        ParameterSupport(supported=frozenset({"max_token", "routing", "temperature"}))
