"""The Anthropic Messages API adapter.

`request.to_anthropic` and `response.from_anthropic` are the pure translations, `stream.StreamTranslator`
turns the event stream into chunks, `errors` classifies failures, and `provider.AnthropicProvider`
does the I/O.
"""

from __future__ import annotations

from server.providers.anthropic.provider import ANTHROPIC_SUPPORT, AnthropicProvider

__all__ = ["ANTHROPIC_SUPPORT", "AnthropicProvider"]
