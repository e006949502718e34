"""The prompt half of a credit reservation: never below what the upstream bills for the prompt."""

from __future__ import annotations

import pytest

from server import tokens
from server.accounts.prompt_bound import FRAMING_TOKENS, IMAGE_TOKENS, prompt_shape
from siraya.router.v1 import chat_pb2, embeddings_pb2, responses_pb2

SAMPLES = [
    "Hello, world! How are you today?",
    "日本語のテキストはトークンが多い。東京都の天気は晴れです。",
    "def f(x):\n    return {'a': [1, 2, 3], \"b\": x ** 2}  # comment\n\n\n",
    "emoji 🎉🎉🎉 and accents: café naïve façade",
    "    lots      of      spaces\t\tand\ttabs",
    "a" * 500,
]
O200K = (("o200k_base", 1.0),)
CL100K = (("cl100k_base", 1.0),)


def _chat(*texts: str, name: str | None = None) -> chat_pb2.ChatCompletionParams:
    params = chat_pb2.ChatCompletionParams(model="m")
    for text in texts:
        message = params.messages.add(role=chat_pb2.CHAT_ROLE_USER, text=text)
        if name is not None:
            message.name = name
    return params


def _openai_reference(texts: list[str], encoding: str, name: str | None = None) -> int:
    """OpenAI's documented count of a chat prompt: 3 per message (+1 with a name), 3 for the reply."""
    enc = tokens.encoding(encoding)
    total = 3
    for text in texts:
        total += 3 + len(enc.encode_ordinary(text)) + len(enc.encode_ordinary("user"))
        if name is not None:
            total += 1 + len(enc.encode_ordinary(name))
    return total


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
def test_both_bounds_cover_openais_own_count(encoding: str) -> None:
    params = _chat(*SAMPLES, name="alice")
    shape = prompt_shape(params)
    reference = _openai_reference(SAMPLES, encoding, name="alice")
    assert shape.counted_bound(((encoding, 1.0),)) >= reference
    assert shape.byte_bound() >= reference


def test_the_tokenizer_bound_is_tight_and_never_above_the_byte_bound() -> None:
    shape = prompt_shape(_chat(*SAMPLES))
    counted = shape.counted_bound(O200K)
    exact = sum(len(tokens.encoding("o200k_base").encode_ordinary(text)) for text in SAMPLES)
    assert counted == exact + shape.fixed_tokens
    assert shape.fixed_tokens == FRAMING_TOKENS * (1 + len(SAMPLES))
    assert counted < shape.byte_bound()  # "a" * 500 alone is 63 tokens, 500 bytes
    assert shape.counted_bound((("cl100k_base", 1000.0),)) == shape.byte_bound()


def test_a_factor_scales_the_count_and_the_largest_counting_wins() -> None:
    shape = prompt_shape(_chat("The quick brown fox jumps over the lazy dog. " * 20))
    plain = shape.counted_bound(CL100K) - shape.fixed_tokens
    assert shape.counted_bound((("cl100k_base", 1.5),)) - shape.fixed_tokens == -(-plain * 3 // 2)
    assert shape.counted_bound((*CL100K, ("cl100k_base", 1.5))) == shape.counted_bound(
        (("cl100k_base", 1.5),)
    )


def test_images_take_a_fixed_allowance_and_are_never_tokenized() -> None:
    params = _chat()
    message = params.messages.add(role=chat_pb2.CHAT_ROLE_USER)
    message.parts.parts.add().text.text = "what is this?"
    message.parts.parts.add().image_url.url = "https://example.com/cat.png"
    message.parts.parts.add().image_url.url = "data:image/png;base64," + "A" * 400_000
    shape = prompt_shape(params)
    assert shape.texts == ["what is this?"]
    assert shape.fixed_tokens >= 2 * IMAGE_TOKENS
    assert shape.byte_bound() < 2 * IMAGE_TOKENS + 1_000  # the base64 bytes count as one image


def test_audio_and_files_count_by_their_payload() -> None:
    params = _chat()
    part = params.messages.add(role=chat_pb2.CHAT_ROLE_USER).parts.parts.add()
    part.input_audio.data = "B" * 4000
    part.input_audio.format = "wav"
    shape = prompt_shape(params)
    assert shape.fixed_tokens >= 1000 and "B" * 4000 not in shape.texts


def test_tools_and_schemas_count_as_text() -> None:
    params = _chat("hi")
    tool = params.tools.add()
    tool.function.name = "lookup_weather"
    tool.function.description = "Look the weather up."
    tool.function.parameters_json = b'{"type":"object","properties":{"city":{"type":"string"}}}'
    shape = prompt_shape(params)
    assert "lookup_weather" in shape.texts and "Look the weather up." in shape.texts
    assert any("city" in text for text in shape.texts)


def test_the_model_and_routing_are_not_prompt() -> None:
    params = _chat("hi")
    params.model = "some-very-long-model-name"
    params.routing.models.append("fallback-model")
    assert "some-very-long-model-name" not in prompt_shape(params).texts
    assert not any("fallback" in text for text in prompt_shape(params).texts)


def test_responses_and_embeddings_are_read_too() -> None:
    response = responses_pb2.ResponseParams(model="m", input_text="tell me a story", instructions="be brief")
    assert set(prompt_shape(response).texts) == {"tell me a story", "be brief"}
    ids = embeddings_pb2.EmbeddingParams(model="m")
    ids.tokens.values.extend(range(300))
    assert prompt_shape(ids).byte_bound() == 300 + FRAMING_TOKENS
    texts = embeddings_pb2.EmbeddingParams(model="m")
    texts.texts.values.extend(["one", "two"])
    assert prompt_shape(texts).texts == ["one", "two"]
