"""What the fake says: a deterministic reply to a valid request, as a message or as stream events.

The default reply, from the last user turn:
- tool results in it -> text "Tool results: <each result's text>";
- else tools offered and tool_choice not "none" -> a tool_use of the named (or first) tool, its
  input an instance of the tool's schema;
- else `output_config.format` -> the JSON text of an instance of the schema;
- else "Hello from <model>! You said: <text>", noting any images and documents received.
With `thinking` enabled a signed thinking block comes first. Tokens are counted as words;
`max_tokens` and `stop_sequences` cut the text as Anthropic would.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

from tests.fakes.openai_upstream.schema_instance import schema_instance

from .control import ScriptedMessage

__all__ = ["Event", "message_body", "plan_reply", "sign_thinking", "stream_events"]

Event = tuple[str, dict[str, Any]]
THINKING_TEXT = "The user wants an answer. Let me think it through."


def sign_thinking(thinking: str) -> str:
    """The fake's signature of a thinking text: base64, like Anthropic's, and checked when sent back."""
    return base64.b64encode(
        hashlib.sha256(b"fake-anthropic-thinking\x00" + thinking.encode()).digest()
    ).decode()


SIGNATURE = sign_thinking(THINKING_TEXT)


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    texts: list[str] = []
    for block in content or []:
        if block.get("type") == "text":
            texts.append(block["text"])
        elif block.get("type") == "tool_result":
            texts.extend(_texts(block.get("content")))
    return texts


def _count_words(body: dict[str, Any]) -> int:
    words = sum(len(text.split()) for m in body["messages"] for text in _texts(m["content"]))
    system = body.get("system")
    if system:
        words += sum(len(t.split()) for t in _texts(system))
    return words + 3


def plan_reply(body: dict[str, Any]) -> ScriptedMessage:
    # A trailing mid-conversation system message instructs; the turn answered is the one before it.
    last = next(m for m in reversed(body["messages"]) if m["role"] != "system")
    content = (
        last["content"] if isinstance(last["content"], list) else [{"type": "text", "text": last["content"]}]
    )
    results = [t for b in content if b["type"] == "tool_result" for t in _texts(b.get("content"))]
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {"type": "auto"}
    blocks: list[dict[str, Any]] = []
    if body.get("thinking", {}).get("type") == "enabled":
        blocks.append({"type": "thinking", "thinking": THINKING_TEXT, "signature": SIGNATURE})
    if last["role"] == "user" and results:
        blocks.append({"type": "text", "text": "Tool results: " + "; ".join(results)})
    elif last["role"] == "user" and tools and choice["type"] != "none":
        tool = next((t for t in tools if t["name"] == choice.get("name")), tools[0])
        blocks.append(
            {
                "type": "tool_use",
                "id": "toolu_fake01",
                "name": tool["name"],
                "input": schema_instance(tool["input_schema"]),
            }
        )
        return ScriptedMessage(blocks, "tool_use")
    elif (body.get("output_config") or {}).get("format"):
        schema = body["output_config"]["format"]["schema"]
        blocks.append({"type": "text", "text": orjson.dumps(schema_instance(schema)).decode()})
    else:
        said = " ".join(_texts(content)) or "nothing"
        text = f"Hello from {body['model']}! You said: {said}"
        images = sum(1 for b in content if b["type"] == "image")
        documents = sum(1 for b in content if b["type"] == "document")
        if images:
            text += f" [{images} image(s)]"
        if documents:
            text += f" [{documents} document(s)]"
        blocks.append({"type": "text", "text": text})
    return _cut(blocks, body)


def _cut(blocks: list[dict[str, Any]], body: dict[str, Any]) -> ScriptedMessage:
    """Apply stop_sequences, then max_tokens (counted in words), to the final text block."""
    text_block = blocks[-1]
    text: str = text_block["text"]
    for stop in body.get("stop_sequences") or []:
        at = text.find(stop)
        if at >= 0:
            text_block["text"] = text[:at]
            return ScriptedMessage(blocks, "stop_sequence", stop_sequence=stop)
    words = text.split(" ")
    if len(words) > body["max_tokens"]:
        text_block["text"] = " ".join(words[: body["max_tokens"]])
        return ScriptedMessage(blocks, "max_tokens")
    return ScriptedMessage(blocks, "end_turn")


def _usage(reply: ScriptedMessage, body: dict[str, Any]) -> dict[str, int]:
    output = 0
    for block in reply.content:
        value = block.get("text") or block.get("thinking") or orjson.dumps(block.get("input", {})).decode()
        output += len(value.split())
    usage = {
        "input_tokens": _count_words(body),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output,
    }
    usage.update(reply.usage or {})
    return usage


def message_body(reply: ScriptedMessage, body: dict[str, Any], message_id: str) -> dict[str, Any]:
    """The non-streaming Message object, with Anthropic's key order."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": reply.content,
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "usage": _usage(reply, body),
    }


def _pieces(text: str, count: int = 3) -> list[str]:
    """Split `text` into up to `count` non-empty pieces, the way deltas arrive."""
    if not text:
        return []
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)]


def stream_events(reply: ScriptedMessage, body: dict[str, Any], message_id: str) -> list[Event]:
    """The SSE events of the same reply, in the order Anthropic documents, ping included."""
    usage = _usage(reply, body)
    start_usage = {**usage, "output_tokens": 1}
    events: list[Event] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(reply.content):
        kind = block["type"]
        deltas: list[dict[str, Any]]
        if kind == "text":
            shell: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(block["text"])]
        elif kind == "thinking":
            shell = {"type": "thinking", "thinking": ""}
            deltas = [{"type": "thinking_delta", "thinking": piece} for piece in _pieces(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block.get("signature", SIGNATURE)})
        elif kind == "tool_use":
            shell = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            arguments = orjson.dumps(block["input"]).decode()
            deltas = [{"type": "input_json_delta", "partial_json": ""}]
            deltas += [{"type": "input_json_delta", "partial_json": piece} for piece in _pieces(arguments)]
        else:
            shell, deltas = dict(block), []
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": shell})
        )
        events.extend(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events
