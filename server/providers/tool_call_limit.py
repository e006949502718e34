"""`parallel_tool_calls: false`, honoured by the gateway for upstreams that cannot be told.

OpenAI's `false` means a turn makes at most one tool call. Gemini has no such switch, and clients
send `false` by default (LangChain's `with_structured_output(method="function_calling")`,
LlamaIndex's `chat_with_tools`), so the native adapters keep the first tool call of each choice and
drop the rest: what the client gets is then an answer the upstream could have given under the
constraint. Anthropic is also told (`disable_parallel_tool_use`); the cap holds whatever comes back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from siraya.router.v1 import chat_pb2

__all__ = ["first_tool_call_only", "first_tool_calls_streamed", "single_tool_call"]


def single_tool_call(params: chat_pb2.ChatCompletionParams) -> bool:
    """Whether the request asked for at most one tool call per turn."""
    return params.HasField("parallel_tool_calls") and not params.parallel_tool_calls


def first_tool_call_only(completion: chat_pb2.ChatCompletion) -> chat_pb2.ChatCompletion:
    """`completion` with each choice's tool calls cut to the first (in place)."""
    for choice in completion.choices:
        del choice.message.tool_calls[1:]
    return completion


async def first_tool_calls_streamed(
    chunks: AsyncIterator[chat_pb2.ChatCompletionChunk],
) -> AsyncIterator[chat_pb2.ChatCompletionChunk]:
    """`chunks` without the deltas of any tool call past each choice's first (index 0); a chunk left
    with nothing to say is not sent."""
    try:
        async for chunk in chunks:
            trimmed = False
            for choice in chunk.choices:
                calls = choice.delta.tool_calls
                if any(call.index > 0 for call in calls):
                    kept = [call for call in calls if call.index == 0]
                    del calls[:]
                    calls.extend(kept)
                    trimmed = True
            if trimmed and not chunk.HasField("usage") and all(_empty(choice) for choice in chunk.choices):
                continue
            yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def _empty(choice: chat_pb2.ChatCompletionChunkChoice) -> bool:
    return choice.delta.ByteSize() == 0 and not choice.finish_reason and not choice.HasField("logprobs")
