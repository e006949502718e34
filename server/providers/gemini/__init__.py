"""The Google Gemini API provider (`type: gemini`).

Pure translation lives in `request` (chat -> generateContent), `response` (the answer -> a chat
completion), `stream` (SSE events -> chunks), `media` (embeddings, images), `video` (Veo jobs),
`tool_ids` and `errors`; `provider` does the HTTP. The default `base_url` is
`https://generativelanguage.googleapis.com/v1beta`.
"""

from __future__ import annotations

from server.providers.gemini.provider import DEFAULT_BASE_URL, GeminiProvider

__all__ = ["DEFAULT_BASE_URL", "GeminiProvider"]
