"""How a thinking signature rides inside a chat tool-call id: `<id>__ts_<signature>`.

The chat request and reply have no field for a reasoning signature, and an OpenAI client echoes
only a tool call's id, so the native adapters carry the signature that must come back with the
next turn inside that id: the Anthropic adapter the signature of the turn's thinking block
(`server/providers/anthropic/thinking.py`), the Gemini adapter a function call's thoughtSignature
(`server/providers/gemini/tool_ids.py`). Both use this mark; signatures are base64 and never hold it.

The Messages front door reads the same convention to give an Anthropic client its thinking block's
signature back, and writes it when the client returns a signed thinking block.
"""

from __future__ import annotations

__all__ = ["SIGNATURE_MARK", "join_signature", "split_signature"]

SIGNATURE_MARK = "__ts_"


def join_signature(call_id: str, signature: str) -> str:
    """The tool-call id that carries `signature` (the id itself when the signature is empty)."""
    return f"{call_id}{SIGNATURE_MARK}{signature}" if signature else call_id


def split_signature(call_id: str) -> tuple[str, str]:
    """(the id without a carried signature, the signature or "")."""
    base, mark, signature = call_id.partition(SIGNATURE_MARK)
    if mark and base and signature:
        return base, signature
    return call_id, ""
