"""Generated text and counts -> chat completion and chunk protos. Pure: no model."""

from __future__ import annotations

import secrets
import time

from server.providers.local.engine import GenerationResult
from siraya.router.v1 import chat_pb2, common_pb2

__all__ = ["ChunkWriter", "completion", "new_completion_id", "usage"]

_CHUNK_OBJECT = "chat.completion.chunk"


def new_completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(16)


def usage(result: GenerationResult) -> common_pb2.Usage:
    return common_pb2.Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )


def completion(text: str, result: GenerationResult, model: str) -> chat_pb2.ChatCompletion:
    reply = chat_pb2.ChatCompletion(
        id=new_completion_id(), object="chat.completion", created=int(time.time()), model=model
    )
    message = chat_pb2.ChatCompletionMessage(role="assistant", content=text)
    reply.choices.add(index=0, message=message, finish_reason=result.finish_reason)
    reply.usage.CopyFrom(usage(result))
    return reply


class ChunkWriter:
    """The chunks of one streamed completion, sharing its id and creation time."""

    def __init__(self, model: str) -> None:
        self._id = new_completion_id()
        self._created = int(time.time())
        self._model = model

    def _chunk(self) -> chat_pb2.ChatCompletionChunk:
        return chat_pb2.ChatCompletionChunk(
            id=self._id, object=_CHUNK_OBJECT, created=self._created, model=self._model
        )

    def role(self) -> chat_pb2.ChatCompletionChunk:
        chunk = self._chunk()
        delta = chunk.choices.add(index=0).delta
        delta.role = "assistant"
        delta.content = ""
        return chunk

    def content(self, text: str) -> chat_pb2.ChatCompletionChunk:
        chunk = self._chunk()
        chunk.choices.add(index=0).delta.content = text
        return chunk

    def finish(self, finish_reason: str) -> chat_pb2.ChatCompletionChunk:
        chunk = self._chunk()
        choice = chunk.choices.add(index=0, finish_reason=finish_reason)
        choice.delta.SetInParent()
        return chunk

    def usage(self, result: GenerationResult) -> chat_pb2.ChatCompletionChunk:
        chunk = self._chunk()
        chunk.usage.CopyFrom(usage(result))
        return chunk
