"""Tool-call ids for Gemini, which (as a rule) returns function calls without ids.

An id is synthesized from the response it came in: `call_<24 hex>`, the same for the unary and the
streamed form of one response. Gemini 2.5+ may attach an opaque `thoughtSignature` to a function
call, and Gemini 3 rejects the next turn (400) unless that signature comes back on the same
functionCall part. OpenAI clients only echo the tool-call id, so the signature rides inside it:
`call_<hex>__ts_<signature>`. `split_tool_call_id` recovers it when the history is sent back.
"""

from __future__ import annotations

import hashlib

__all__ = ["SIGNATURE_MARK", "make_tool_call_id", "split_tool_call_id"]

SIGNATURE_MARK = "__ts_"


def make_tool_call_id(
    response_id: str, candidate: int, position: int, name: str, arguments: str, signature: str | None
) -> str:
    """A stable id for the `position`-th call of candidate `candidate` of one response."""
    digest = hashlib.sha256(f"{response_id}\x00{candidate}\x00{position}\x00{name}\x00{arguments}".encode())
    base = "call_" + digest.hexdigest()[:24]
    return f"{base}{SIGNATURE_MARK}{signature}" if signature else base


def split_tool_call_id(call_id: str) -> tuple[str, str | None]:
    """(the id without its signature, the thoughtSignature or None)."""
    base, mark, signature = call_id.partition(SIGNATURE_MARK)
    if mark and signature:
        return base, signature
    return call_id, None
