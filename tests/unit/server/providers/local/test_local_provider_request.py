"""Chat params -> Generation for the local provider, and what it refuses. No model needed."""

from __future__ import annotations

from typing import Any

import pytest

from server.errors import InvalidRequest
from server.providers.local.request import (
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    LOCAL_SUPPORT,
    Turn,
    to_generation,
)
from siraya.router.codec.chat import decode_chat_request
from siraya.router.v1 import chat_pb2

USER = {"role": "user", "content": "Hi"}


def params(**body: Any) -> chat_pb2.ChatCompletionParams:
    body.setdefault("model", "local/smollm2-135m-instruct")
    body.setdefault("messages", [USER])
    return decode_chat_request(body)


def refused(**body: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as error:
        to_generation(params(**body), "local")
    return error.value


def test_turns_keep_role_and_text_and_developer_becomes_system() -> None:
    job = to_generation(
        params(
            messages=[
                {"role": "developer", "content": "Be brief."},
                {"role": "system", "content": "You are terse."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
                },
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "again"},
            ]
        ),
        "local",
    )
    assert job.turns == (
        Turn("system", "Be brief."),
        Turn("system", "You are terse."),
        Turn("user", "one\ntwo"),
        Turn("assistant", "ok"),
        Turn("user", "again"),
    )


def test_sampling_controls_are_carried_and_unset_ones_take_the_library_defaults() -> None:
    job = to_generation(
        params(temperature=0, top_p=0.5, seed=7, stop=["\n\n", "END"], max_tokens=12, presence_penalty=0.5),
        "local",
    )
    assert job.sampling.temperature == 0
    assert job.sampling.top_p == 0.5
    assert job.sampling.seed == 7
    assert job.sampling.presence_penalty == 0.5
    assert job.stop == ("\n\n", "END")
    assert job.max_tokens == 12
    plain = to_generation(params(), "local")
    assert (plain.sampling.temperature, plain.sampling.top_p) == (DEFAULT_TEMPERATURE, DEFAULT_TOP_P)
    assert plain.sampling.seed is None and plain.max_tokens is None and plain.grammar is None


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    assert to_generation(params(max_tokens=50, max_completion_tokens=9), "local").max_tokens == 9


def test_tools_are_refused_by_the_shared_parameter_policy() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    error = refused(tools=[tool])
    assert error.param == "tools"
    assert error.code == "unsupported_parameter"
    assert "local" in error.message


def test_images_are_refused_as_a_content_part() -> None:
    part = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    error = refused(messages=[{"role": "user", "content": [part]}])
    assert error.param == "messages[0].content[0]"


def test_tool_results_in_the_history_are_refused() -> None:
    error = refused(messages=[USER, {"role": "tool", "tool_call_id": "call_1", "content": "42"}])
    assert error.param == "messages[1]"


def test_n_above_one_and_logprobs_are_refused_but_no_op_values_pass() -> None:
    assert refused(n=2).param == "n"
    assert refused(logprobs=True).param == "logprobs"
    to_generation(params(n=1, logprobs=False, user="u-1", metadata={"a": "b"}), "local")


def test_bad_values_are_refused() -> None:
    assert refused(max_tokens=0).param == "max_tokens"
    assert refused(temperature=-1).param == "temperature"
    assert refused(top_k="many").param == "top_k"


def test_llama_cpp_sampling_extras_are_honoured_and_other_unknown_fields_refused() -> None:
    job = to_generation(params(top_k=5, min_p=0.1, repeat_penalty=1.2), "local")
    assert (job.sampling.top_k, job.sampling.min_p, job.sampling.repeat_penalty) == (5, 0.1, 1.2)
    assert refused(mirostat=2).param == "mirostat"
    assert refused(response_format={"type": "xml"}).code == "unsupported_parameter"


def test_the_support_list_names_no_tools_and_no_images() -> None:
    assert "tools" not in LOCAL_SUPPORT.supported
    assert "image_url" not in LOCAL_SUPPORT.supported
    assert {
        "temperature",
        "top_p",
        "stop",
        "max_tokens",
        "seed",
        "response_format",
    } <= LOCAL_SUPPORT.supported


def test_the_providers_defaults_apply_only_when_the_request_sets_nothing() -> None:
    def job(**body: Any) -> Any:
        return to_generation(params(**body), "local", default_max_tokens=512, repeat_penalty=1.1)

    assert (job().max_tokens, job().sampling.repeat_penalty) == (512, 1.1)
    own = job(max_tokens=2000, repeat_penalty=1.0)
    assert (own.max_tokens, own.sampling.repeat_penalty) == (2000, 1.0)
    assert job(max_completion_tokens=7).max_tokens == 7
