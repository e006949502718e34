"""The most prompt tokens a request can be billed for: the prompt half of a credit reservation.

A reservation must be a true upper bound, so this errs high, never low. It walks the request proto
once (chat, Responses and embeddings alike) and splits what it finds into:

- text: every string the upstream may turn into prompt tokens (messages, tool definitions and
  schemas, instructions, ...). Its bound comes two ways, and the smaller wins:
    * its UTF-8 bytes: every tokenizer the gateway meets (byte-level BPE: OpenAI's, Llama's,
      Anthropic's; SentencePiece with byte fallback: Gemini's) spends at least one byte per token,
      so the byte count is an upper bound that needs no tokenizer at all;
    * the real tokenizer (server/tokens.py: OpenAI's encodings, offline) times the provider's
      factor from the built-in catalogue: exact for OpenAI models, and a margin over the measured
      ratio for providers whose tokenizers are not public (Anthropic's spends more tokens than
      cl100k_base on the same text);
- fixed allowances, the same for both: IMAGE_TOKENS per image (more than any priced provider bills
  for one image; a file referenced by id or URL counts as one image, its size unknown here), one
  token per token id given as input, bytes/4 of an inline file or audio payload (an estimate: its
  size in tokens is not knowable without decoding it), and FRAMING_TOKENS per list element and for
  the reply's priming.

Counting with the tokenizer costs about 0.2 ms per KB of text, so metering asks for it only when the
byte bound does not fit the key's credit (server/accounts/accounting.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from server import tokens

__all__ = [
    "FRAMING_TOKENS",
    "IMAGE_TOKENS",
    "PromptShape",
    "prompt_shape",
]

# The most one image is billed at any priced provider: OpenAI's patch-based models cap an image at
# 1,536 patches times up to 1.62 (about 2,490 tokens); a high-detail gpt-4o image is at most 1,105
# tokens; Anthropic's largest unresized image about 1,600; Gemini 258 per tile.
IMAGE_TOKENS = 2_500
# Per list element (message, part, tool) and once for the reply: OpenAI documents 3 per message, the
# role's token and 1 for a name, and 3 for the reply's priming; the rest is margin.
FRAMING_TOKENS = 8
BLOB_BYTES_PER_TOKEN = 4
# Fields that are the gateway's or the upstream's bookkeeping, never prompt.
_NOT_PROMPT = frozenset(
    {"model", "routing", "user", "metadata", "stream_options", "logit_bias", "prompt_cache_key"}
)
# Strings that reference or carry an image (a referenced file counts as one: its size is not known
# here), and strings that carry a base64 payload.
_IMAGE_FIELDS = frozenset({"url", "image_url", "file_id", "file_url"})
_BLOB_FIELDS = frozenset({"data", "file_data"})
_STRING = FieldDescriptor.TYPE_STRING
_BYTES = FieldDescriptor.TYPE_BYTES
_MESSAGE = FieldDescriptor.TYPE_MESSAGE
# Token ids given as input (embeddings): one token each.
_TOKEN_IDS = frozenset({FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_INT32})


@dataclass(slots=True)
class PromptShape:
    """What a request's prompt is made of, as far as billing goes."""

    texts: list[str] = field(default_factory=list)
    text_bytes: int = 0
    # Tokens that do not depend on a tokenizer: images, payloads, framing.
    fixed_tokens: int = FRAMING_TOKENS

    def byte_bound(self) -> int:
        """An upper bound without a tokenizer (every token spends at least a byte)."""
        return self.text_bytes + self.fixed_tokens

    def counted_bound(self, counting: tuple[tuple[str, float], ...]) -> int:
        """An upper bound from the real tokenizer: the largest over `counting`'s (encoding, factor)
        pairs (one per kind of deployment), never above the byte bound."""
        counted = 0
        for name, factor in counting:
            encoding = tokens.encoding(name)
            total = sum(len(encoding.encode_ordinary(text)) for text in self.texts)
            counted = max(counted, math.ceil(total * factor))
        return min(counted, self.text_bytes) + self.fixed_tokens

    def add_text(self, text: str) -> None:
        if text:
            self.texts.append(text)
            self.text_bytes += len(text.encode())


def prompt_shape(params: Message) -> PromptShape:
    """The prompt a request proto carries (chat, Responses, embeddings: any of them)."""
    shape = PromptShape()
    # A stack, not recursion: every request of a key with a credit limit comes through here.
    pending = [params]
    while pending:
        message = pending.pop()
        for descriptor, value in message.ListFields():
            name = descriptor.name
            if name in _NOT_PROMPT:
                continue
            kind = descriptor.type
            if not descriptor.is_repeated:
                values: Any = (value,)
            elif kind == _MESSAGE and descriptor.message_type.GetOptions().map_entry:
                for key, item in value.items():
                    shape.add_text(key)
                    if isinstance(item, Message):
                        pending.append(item)
                    elif isinstance(item, str):
                        shape.add_text(item)
                continue
            else:
                # A slice: iterating the repeated field itself ends in an IndexError that upb formats.
                values = value[:]
            if kind == _STRING:
                for text in values:
                    if name in _IMAGE_FIELDS or text.startswith("data:image/"):
                        shape.fixed_tokens += IMAGE_TOKENS
                    elif name in _BLOB_FIELDS or text.startswith("data:"):
                        shape.fixed_tokens += -(-len(text) // BLOB_BYTES_PER_TOKEN)
                    elif text:
                        shape.texts.append(text)
                        shape.text_bytes += len(text.encode())
            elif kind == _BYTES:
                for data in values:  # JSON the upstream reads (schemas, tool parameters)
                    shape.add_text(data.decode("utf-8", "replace"))
            elif (
                kind in _TOKEN_IDS
                and descriptor.is_repeated
                and descriptor.containing_type.name == "TokenIds"
            ):
                shape.fixed_tokens += len(value)
            elif kind == _MESSAGE:
                if descriptor.is_repeated:
                    shape.fixed_tokens += FRAMING_TOKENS * len(value)
                pending.extend(values)
    return shape
