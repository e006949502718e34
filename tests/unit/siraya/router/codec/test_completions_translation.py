"""Legacy completions into and out of the internal chat request (completions_to_chat.py,
completions_from_chat.py), and the prompts as text (server/completion_prompts.py)."""

from __future__ import annotations

import asyncio

import pytest

from server import tokens
from server.completion_prompts import prompt_texts
from server.errors import InvalidRequest
from siraya.router.codec.completions_from_chat import (
    CompletionAssembler,
    CompletionStreamTranslator,
    add_usage,
    completion_id,
    finish_reason,
)
from siraya.router.codec.completions_to_chat import check_completion_params, to_chat_params, with_prompt
from siraya.router.codec.errors import CodecError
from siraya.router.v1 import chat_pb2, common_pb2, completions_pb2

# --- into chat --------------------------------------------------------------------------------


def test_chat_request_carries_the_sampling_fields() -> None:
    params = completions_pb2.CompletionParams(
        model="m",
        text="p",
        temperature=0.2,
        top_p=0.5,
        n=2,
        seed=9,
        presence_penalty=0.1,
        frequency_penalty=0.3,
        user="u",
        logprobs=3,
        best_of=2,
        echo=False,
    )
    params.stop.extend(["a", "b"])
    params.logit_bias["7"] = 5
    params.routing.models.append("other")
    params.extra_body.update({"top_k": 4})
    chat = with_prompt(to_chat_params(params, streaming=False), "the prompt")
    assert [(m.role, m.text) for m in chat.messages] == [(chat_pb2.CHAT_ROLE_USER, "the prompt")]
    assert (chat.model, chat.max_tokens, chat.temperature, chat.top_p, chat.n, chat.seed) == (
        "m",
        16,
        0.2,
        0.5,
        2,
        9,
    )
    assert (chat.presence_penalty, chat.frequency_penalty, chat.user) == (0.1, 0.3, "u")
    assert list(chat.stop) == ["a", "b"] and dict(chat.logit_bias) == {"7": 5}
    assert chat.logprobs is True and chat.top_logprobs == 3
    assert list(chat.routing.models) == ["other"] and chat.extra_body["top_k"] == 4
    assert not chat.HasField("max_completion_tokens") and not chat.HasField("stream_options")


def test_max_tokens_default_and_stream_options_only_on_streams() -> None:
    params = completions_pb2.CompletionParams(model="m", text="p", max_tokens=99)
    params.stream_options.include_usage = True
    assert to_chat_params(params, streaming=False).max_tokens == 99
    assert not to_chat_params(params, streaming=False).HasField("stream_options")
    assert to_chat_params(params, streaming=True).stream_options.include_usage
    bare = to_chat_params(completions_pb2.CompletionParams(model="m", text="p"), streaming=True)
    assert bare.max_tokens == 16
    assert not bare.HasField("logprobs") and not bare.HasField("n") and not bare.HasField("temperature")


def test_with_prompt_leaves_the_base_alone() -> None:
    base = to_chat_params(completions_pb2.CompletionParams(model="m", text="p"), streaming=False)
    with_prompt(base, "one")
    assert [m.text for m in with_prompt(base, "two").messages] == ["two"]
    assert not base.messages


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"suffix": "tail"}, "suffix"),
        ({"best_of": 2}, "best_of"),
        ({"best_of": 3, "n": 2}, "best_of"),
        ({"logprobs": 1, "echo": True}, "logprobs"),
        ({"model": ""}, "model"),
    ],
)
def test_what_chat_cannot_do_is_refused(fields: dict[str, object], param: str) -> None:
    params = completions_pb2.CompletionParams(model="m", text="p")
    for name, value in fields.items():
        setattr(params, name, value)
    with pytest.raises(CodecError) as caught:
        check_completion_params(params)
    assert caught.value.param == param


@pytest.mark.parametrize(
    "fields", [{"suffix": ""}, {"best_of": 1}, {"best_of": 0}, {"best_of": 3, "n": 3}, {"echo": True}]
)
def test_what_asks_for_nothing_more_is_accepted(fields: dict[str, object]) -> None:
    params = completions_pb2.CompletionParams(model="m", text="p")
    for name, value in fields.items():
        setattr(params, name, value)
    check_completion_params(params)


# --- prompts as text --------------------------------------------------------------------------


def _texts(params: completions_pb2.CompletionParams) -> list[str]:
    return asyncio.run(prompt_texts(params))


def test_prompts_as_text() -> None:
    ids = tokens.encoding().encode("héllo wörld")
    assert _texts(completions_pb2.CompletionParams(text="")) == [""]
    texts = completions_pb2.CompletionParams()
    texts.texts.values.extend(["a", "b"])
    assert _texts(texts) == ["a", "b"]
    one = completions_pb2.CompletionParams()
    one.tokens.values.extend(ids)
    assert _texts(one) == ["héllo wörld"]
    lists = completions_pb2.CompletionParams()
    lists.token_lists.values.add().values.extend(ids)
    lists.token_lists.values.add().values.extend(ids[:1])
    assert _texts(lists) == ["héllo wörld", tokens.decode(ids[:1])]


def test_prompts_that_are_none_are_refused() -> None:
    empty = completions_pb2.CompletionParams()
    empty.texts.SetInParent()
    unknown = completions_pb2.CompletionParams()
    unknown.tokens.values.extend([1, 10**9])
    negative = completions_pb2.CompletionParams()
    negative.token_lists.values.add().values.extend([1, -1])
    empty_list = completions_pb2.CompletionParams()
    empty_list.token_lists.values.add()
    for params, param in (
        (completions_pb2.CompletionParams(), "prompt"),
        (empty, "prompt"),
        (unknown, "prompt"),
        (negative, "prompt[0][1]"),
        (empty_list, "prompt[0]"),
    ):
        with pytest.raises((InvalidRequest, CodecError)) as caught:
            _texts(params)
        assert caught.value.param == param  # type: ignore[attr-defined]


# --- out of chat ------------------------------------------------------------------------------


def _chat(
    text: str, reason: str = "stop", n: int = 1, chat_id: str = "chatcmpl-abc"
) -> chat_pb2.ChatCompletion:
    completion = chat_pb2.ChatCompletion(id=chat_id, created=7, model="public", provider="prov")
    for index in range(n):
        choice = completion.choices.add(index=index, finish_reason=reason)
        choice.message.content = text
    completion.usage.CopyFrom(
        common_pb2.Usage(prompt_tokens=2, completion_tokens=3, total_tokens=5, cost=0.25)
    )
    return completion


def _token(token: str, logprob: float, *alternatives: tuple[str, float]) -> chat_pb2.TokenLogprob:
    return chat_pb2.TokenLogprob(
        token=token,
        logprob=logprob,
        top_logprobs=[chat_pb2.TopLogprob(token=t, logprob=p) for t, p in alternatives],
    )


def test_ids_and_finish_reasons() -> None:
    assert completion_id("chatcmpl-xyz", "req_1") == "cmpl-xyz"
    assert completion_id("msg_01", "req_1") == "cmpl-msg_01"
    assert completion_id("", "req_1") == "cmpl-req_1"
    assert [finish_reason(r) for r in ("stop", "length", "content_filter", "tool_calls", "")] == [
        "stop",
        "length",
        "content_filter",
        "stop",
        "stop",
    ]


def test_unary_choices_of_several_prompts_and_n() -> None:
    answer = CompletionAssembler(n=2, echo=True, fallback_id="req_1")
    answer.add(0, "P0 ", _chat("zero", n=2))
    answer.add(1, "P1 ", _chat("one", reason="length", n=2, chat_id="chatcmpl-other"))
    completion = answer.completion
    assert (completion.id, completion.object, completion.created, completion.model, completion.provider) == (
        "cmpl-abc",
        "text_completion",
        7,
        "public",
        "prov",
    )
    assert [(c.index, c.text, c.finish_reason) for c in completion.choices] == [
        (0, "P0 zero", "stop"),
        (1, "P0 zero", "stop"),
        (2, "P1 one", "length"),
        (3, "P1 one", "length"),
    ]
    assert (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
        completion.usage.total_tokens,
    ) == (
        4,
        6,
        10,
    )
    assert completion.usage.cost == 0.5
    assert not any(c.HasField("logprobs") for c in completion.choices)


def test_unary_refusal_and_logprobs() -> None:
    chat = _chat("")
    chat.choices[0].message.ClearField("content")
    chat.choices[0].message.refusal = "no"
    chat.choices[0].logprobs.content.extend([_token("n", -0.1, ("n", -0.1), ("y", -3.0)), _token("o", -0.2)])
    answer = CompletionAssembler(n=1, echo=False, fallback_id="req_1")
    answer.add(0, "four", chat)
    [choice] = answer.completion.choices
    assert choice.text == "no"
    logprobs = choice.logprobs
    assert list(logprobs.tokens) == ["n", "o"] and list(logprobs.token_logprobs) == [-0.1, -0.2]
    assert [[(e.token, e.logprob) for e in p.entries] for p in logprobs.top_logprobs] == [
        [("n", -0.1), ("y", -3.0)],
        [],
    ]
    # Offsets count from the start of the prompt, as OpenAI's do.
    assert list(logprobs.text_offset) == [4, 5]


def test_usage_details_add_up() -> None:
    total = common_pb2.Usage()
    part = common_pb2.Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3)
    part.prompt_tokens_details.cached_tokens = 1
    part.completion_tokens_details.reasoning_tokens = 2
    add_usage(total, part)
    add_usage(total, part)
    assert total.prompt_tokens_details.cached_tokens == 2
    assert total.completion_tokens_details.reasoning_tokens == 4
    assert not total.HasField("cost") and not total.prompt_tokens_details.HasField("audio_tokens")


def _chunk(
    index: int = 0, content: str | None = None, reason: str | None = None, role: bool = False
) -> chat_pb2.ChatCompletionChunk:
    chunk = chat_pb2.ChatCompletionChunk(id="chatcmpl-s", created=3, model="public", provider="prov")
    choice = chunk.choices.add(index=index)
    if role:
        choice.delta.role = "assistant"
    if content is not None:
        choice.delta.content = content
    if reason is not None:
        choice.finish_reason = reason
    return chunk


def _usage_chunk(prompt: int, completion: int) -> chat_pb2.ChatCompletionChunk:
    chunk = chat_pb2.ChatCompletionChunk(id="chatcmpl-s", created=3, model="public")
    chunk.usage.CopyFrom(
        common_pb2.Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)
    )
    return chunk


def test_stream_of_two_prompts_with_echo_and_usage() -> None:
    translator = CompletionStreamTranslator(n=1, echo=True, fallback_id="req_1")
    out = []
    for position, prompt in enumerate(["A: ", "B: "]):
        for chunk in (
            _chunk(role=True, content=""),
            _chunk(content="x"),
            _chunk(content="y"),
            _chunk(reason="tool_calls"),
            _usage_chunk(2, 2),
        ):
            translated = translator.feed(position, prompt, chunk)
            if translated is not None:
                out.append(translated)
    final = translator.usage_chunk()
    assert final is not None and not final.choices
    assert (final.usage.prompt_tokens, final.usage.completion_tokens, final.usage.total_tokens) == (4, 4, 8)
    assert {c.id for c in [*out, final]} == {"cmpl-s"} and {c.provider for c in out} == {"prov"}
    assert [[(c.index, c.text, c.finish_reason or None) for c in chunk.choices] for chunk in out] == [
        [(0, "A: ", None)],
        [(0, "x", None)],
        [(0, "y", None)],
        [(0, "", "stop")],
        [(1, "B: ", None)],
        [(1, "x", None)],
        [(1, "y", None)],
        [(1, "", "stop")],
    ]
    assert not any(c.HasField("usage") for c in out)


def test_stream_without_echo_skips_empty_deltas_and_has_no_usage_chunk() -> None:
    translator = CompletionStreamTranslator(n=2, echo=False, fallback_id="req_1")
    assert translator.feed(0, "p", _chunk(role=True, content="")) is None
    assert translator.feed(0, "p", _chunk(index=1, content="b")) is not None
    assert translator.usage_chunk() is None


def test_stream_logprob_offsets_run_on_across_chunks() -> None:
    translator = CompletionStreamTranslator(n=1, echo=False, fallback_id="req_1")
    offsets = []
    for text in ("ab", "c"):
        chunk = _chunk(content=text)
        chunk.choices[0].logprobs.content.append(_token(text, -1.0))
        translated = translator.feed(0, "xyz", chunk)
        assert translated is not None
        offsets.extend(translated.choices[0].logprobs.text_offset)
    assert offsets == [3, 5]
