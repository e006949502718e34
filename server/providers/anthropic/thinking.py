"""Carrying a signed thinking block through an OpenAI client, so a tool loop can keep thinking on.

With extended thinking on, Anthropic requires the assistant turn that made tool calls to come back
starting with its thinking block, unmodified: the text and its `signature`. An OpenAI client echoes
the assistant message's `reasoning` (the text) and each tool call's id, nothing else, so the
signature rides inside the id of the turn's first tool call: `toolu_<id>__ts_<signature>`
(signatures are base64, which never holds "__ts_"). The translation splits it off again, sends the
bare id, and rebuilds `{"type": "thinking", "thinking": reasoning, "signature": ...}`.

Only a reply with exactly one thinking block and no redacted thinking can be carried this way: the
OpenAI message has one reasoning string, and redacted blocks have no text to put in it. Without a
carried signature the next turn runs with thinking off, as Anthropic then demands.
"""

from __future__ import annotations

__all__ = ["SIGNATURE_MARK", "join_signature", "split_signature"]

SIGNATURE_MARK = "__ts_"


def join_signature(tool_use_id: str, signature: str | None) -> str:
    """The OpenAI tool call id for Anthropic's `tool_use_id`, with the thinking signature if any."""
    return f"{tool_use_id}{SIGNATURE_MARK}{signature}" if signature else tool_use_id


def split_signature(call_id: str) -> tuple[str, str | None]:
    """(Anthropic's tool_use id, the thinking signature or None) of an OpenAI tool call id."""
    base, mark, signature = call_id.partition(SIGNATURE_MARK)
    if mark and base and signature:
        return base, signature
    return call_id, None
