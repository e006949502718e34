"""LocalProvider around a scripted engine: chunk order, usage, and how failures are classified.

The real model is exercised end to end in tests/e2e/test_local_model.py; here the engine is a
stand-in so that these run everywhere, extra installed or not.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from server.config import LocalProviderConfig
from server.errors import InvalidRequest, UpstreamError
from server.providers.base import RequestContext
from server.providers.local import provider as provider_module
from server.providers.local.engine import GenerationResult, ModelLoadError
from server.providers.local.provider import LocalProvider
from server.providers.local.request import Generation
from siraya.router.codec.chat import decode_chat_request
from siraya.router.v1 import chat_pb2, embeddings_pb2

Script = Callable[[Generation, Callable[[str], None], threading.Event], GenerationResult]


def say(*pieces: str, finish: str = "stop") -> Script:
    def run(job: Generation, emit: Callable[[str], None], cancelled: threading.Event) -> GenerationResult:
        emit("")
        for piece in pieces:
            emit(piece)
        return GenerationResult(finish, prompt_tokens=11, completion_tokens=len(pieces))

    return run


class ScriptedEngine:
    script: Script = say("Hi")
    fail_load: Exception | None = None

    def __init__(self, path: Path, *, context_size: int, threads: int | None = None) -> None:
        if ScriptedEngine.fail_load is not None:
            raise ScriptedEngine.fail_load
        self.closed = False

    def generate(
        self, job: Generation, emit: Callable[[str], None], cancelled: threading.Event
    ) -> GenerationResult:
        return ScriptedEngine.script(job, emit, cancelled)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def make_provider(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[Script], LocalProvider]:
    monkeypatch.setattr(provider_module, "LlamaEngine", ScriptedEngine)
    monkeypatch.setattr(ScriptedEngine, "fail_load", None)
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")

    def make(script: Script) -> LocalProvider:
        monkeypatch.setattr(ScriptedEngine, "script", staticmethod(script))
        return LocalProvider(LocalProviderConfig(name="tiny", model_path=str(model)))

    return make


def params(**body: Any) -> chat_pb2.ChatCompletionParams:
    return decode_chat_request({"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], **body})


CTX = RequestContext(request_id="req_1")


async def test_a_completion_carries_the_text_finish_reason_and_usage(make_provider: Any) -> None:
    provider = make_provider(say("Hello", ", ", "world", finish="length"))
    completion = await provider.chat(params(), "tiny-model", CTX)
    choice = completion.choices[0]
    assert (choice.message.role, choice.message.content, choice.finish_reason) == (
        "assistant",
        "Hello, world",
        "length",
    )
    assert (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
        completion.usage.total_tokens,
    ) == (
        11,
        3,
        14,
    )
    assert completion.id.startswith("chatcmpl-") and completion.object == "chat.completion"
    assert completion.model == "tiny-model"
    await provider.close()


async def test_a_stream_opens_with_the_role_then_text_then_finish_then_usage(make_provider: Any) -> None:
    provider = make_provider(say("Hel", "lo"))
    chunks = [c async for c in provider.stream_chat(params(stream_options={"include_usage": True}), "m", CTX)]
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].choices[0].delta.content == ""
    assert [c.choices[0].delta.content for c in chunks[1:3]] == ["Hel", "lo"]
    assert chunks[3].choices[0].finish_reason == "stop"
    assert not chunks[4].choices and chunks[4].usage.completion_tokens == 2
    assert len({c.id for c in chunks}) == 1
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    await provider.close()


async def test_the_usage_chunk_comes_without_include_usage_too(make_provider: Any) -> None:
    """The gateway meters every stream, and takes the usage chunk out for a client that did not ask."""
    provider = make_provider(say("a"))
    chunks = [c async for c in provider.stream_chat(params(), "m", CTX)]
    assert len(chunks) == 4
    assert [c.HasField("usage") for c in chunks] == [False, False, False, True]
    await provider.close()


async def test_a_prompt_refused_by_the_engine_fails_before_any_chunk(make_provider: Any) -> None:
    def too_long(
        job: Generation, emit: Callable[[str], None], cancelled: threading.Event
    ) -> GenerationResult:
        raise InvalidRequest("too long", param="messages", code="context_length_exceeded")

    provider = make_provider(too_long)
    received: list[chat_pb2.ChatCompletionChunk] = []
    with pytest.raises(InvalidRequest) as caught:
        async for chunk in provider.stream_chat(params(), "m", CTX):
            received.append(chunk)
    assert caught.value.code == "context_length_exceeded"
    assert received == []
    await provider.close()


async def test_an_engine_crash_is_an_upstream_error(make_provider: Any) -> None:
    def crash(job: Generation, emit: Callable[[str], None], cancelled: threading.Event) -> GenerationResult:
        raise RuntimeError("llama_decode returned -3")

    provider = make_provider(crash)
    with pytest.raises(UpstreamError) as caught:
        await provider.chat(params(), "m", CTX)
    assert "tiny" in caught.value.message and "llama_decode" not in caught.value.message
    await provider.close()


async def test_a_model_that_fails_to_load_answers_502(
    make_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ScriptedEngine, "fail_load", ModelLoadError("cannot load model.gguf: bad magic"))
    provider = make_provider(say("never"))
    with pytest.raises(UpstreamError, match="could not load its model"):
        await provider.chat(params(), "m", CTX)
    await provider.close()


async def test_tools_are_refused_before_the_model_is_asked(make_provider: Any) -> None:
    asked: list[bool] = []

    def record(job: Generation, emit: Callable[[str], None], cancelled: threading.Event) -> GenerationResult:
        asked.append(True)
        return GenerationResult("stop", 1, 0)

    provider = make_provider(record)
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with pytest.raises(InvalidRequest) as caught:
        await provider.chat(params(tools=[tool]), "m", CTX)
    assert caught.value.param == "tools" and not asked
    await provider.close()


async def test_embeddings_are_an_unsupported_capability(make_provider: Any) -> None:
    provider = make_provider(say())
    with pytest.raises(InvalidRequest) as caught:
        await provider.embed(embeddings_pb2.EmbeddingParams(model="tiny"), "m", CTX)
    assert caught.value.code == "unsupported_model_capability"
    await provider.close()
