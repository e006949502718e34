"""An estimate of a Messages request's input tokens, for `POST /v1/messages/count_tokens`.

The gateway serves many model families and ships no tokenizer (see `server/gateway_usage.py`:
tiktoken needs the internet and fits only OpenAI's models), so this is a documented estimate, not
Anthropic's exact count:

- text (system, text blocks, tool results, thinking, tool_use inputs, tool definitions): one token
  per four UTF-8 bytes, the rule of thumb OpenAI documents and the gateway's credit reservation uses;
- an image: 1,600 tokens, what Anthropic documents for an image at its largest unresized size;
- a PDF: 2,000 tokens per page (Anthropic documents 1,500 to 3,000 for a page's text and image),
  its pages counted by their `/Type /Page` objects;
- a few tokens of framing per message and per tool.
"""

from __future__ import annotations

import base64
import binascii
import re

from siraya.router.v1 import messages_pb2

__all__ = ["estimate_input_tokens"]

BYTES_PER_TOKEN = 4
IMAGE_TOKENS = 1600
PDF_PAGE_TOKENS = 2000
MESSAGE_OVERHEAD_TOKENS = 4
TOOL_OVERHEAD_TOKENS = 8
_PDF_PAGE = re.compile(rb"/Type\s*/Page\b")


def estimate_input_tokens(params: messages_pb2.MessageParams) -> int:
    """The estimated input tokens of a request with these params."""
    counter = _Counter()
    which = params.WhichOneof("system")
    if which == "system_text":
        counter.text(params.system_text)
    elif which == "system_blocks":
        for block in params.system_blocks.blocks:
            counter.text(block.text)
    for message in params.messages:
        counter.tokens += MESSAGE_OVERHEAD_TOKENS
        if message.WhichOneof("content") == "text":
            counter.text(message.text)
        else:
            for block in message.blocks.blocks:
                counter.block(block)
    for tool in params.tools:
        counter.tokens += TOOL_OVERHEAD_TOKENS
        counter.text(tool.name)
        counter.text(tool.description)
        counter.bytes += len(tool.input_schema_json)
    return counter.total()


class _Counter:
    __slots__ = ("bytes", "tokens")

    def __init__(self) -> None:
        self.bytes = 0
        self.tokens = 0

    def total(self) -> int:
        return self.tokens + -(-self.bytes // BYTES_PER_TOKEN)

    def text(self, text: str) -> None:
        self.bytes += len(text.encode())

    def block(self, block: messages_pb2.MessageContentBlock) -> None:
        kind = block.WhichOneof("block")
        if kind == "text":
            self.text(block.text.text)
        elif kind == "thinking":
            self.text(block.thinking.thinking)
        elif kind == "tool_use":
            self.text(block.tool_use.name)
            self.bytes += len(block.tool_use.input_json)
        elif kind == "tool_result":
            result = block.tool_result
            if result.WhichOneof("content") == "text":
                self.text(result.text)
            else:
                for inner in result.blocks.blocks:
                    self.block(inner)
        elif kind == "image":
            self.tokens += IMAGE_TOKENS
        elif kind == "document":
            self._document(block.document)
        elif kind == "other":
            self.bytes += block.other.ByteSize()

    def _document(self, document: messages_pb2.MessageDocumentBlock) -> None:
        which = document.WhichOneof("source")
        if which == "text":
            self.text(document.text.data)
        elif which == "base64":
            try:
                pdf = base64.b64decode(document.base64.data, validate=False)
            except (binascii.Error, ValueError):
                pdf = b""
            self.tokens += PDF_PAGE_TOKENS * max(1, len(_PDF_PAGE.findall(pdf)))
        else:
            # A URL or file whose pages the gateway does not fetch: one page's worth.
            self.tokens += PDF_PAGE_TOKENS
