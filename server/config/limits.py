"""The `limits:` section: budgets that keep one request, or one upstream's reply, from costing the
process its memory."""

from __future__ import annotations

from pydantic import model_validator

from server.config.base import PositiveInt, Settings, problem

__all__ = ["LimitsConfig"]

_MIB = 1024 * 1024


class LimitsConfig(Settings):
    """Sizes are bytes. Media is what the gateway fetches or decodes for upstreams that need the bytes
    inline (Gemini): counted raw, it is held about 2.4 times over (raw and base64) until sent.
    """

    # Nesting of arrays and objects in a request body (protobuf parses a Struct ~32 levels deep).
    max_json_depth: PositiveInt = 32
    media_urls_per_request: PositiveInt = 32
    media_bytes_per_url: PositiveInt = 20 * _MIB
    media_bytes_per_request: PositiveInt = 32 * _MIB
    # Per process: media held by all requests at once (a request waits for its share), and fetches.
    media_bytes_in_flight: PositiveInt = 64 * _MIB
    media_fetches_in_flight: PositiveInt = 16
    # An upstream reply read whole, per endpoint kind; streams are bounded per event instead.
    reply_bytes_chat: PositiveInt = 64 * _MIB
    reply_bytes_responses: PositiveInt = 64 * _MIB
    reply_bytes_embeddings: PositiveInt = 64 * _MIB
    reply_bytes_images: PositiveInt = 128 * _MIB
    reply_bytes_videos: PositiveInt = 64 * _MIB
    sse_event_bytes: PositiveInt = 16 * _MIB

    @model_validator(mode="after")
    def _request_fits_the_process(self) -> LimitsConfig:
        if self.media_bytes_per_request > self.media_bytes_in_flight:
            raise problem("must be <= limits.media_bytes_in_flight", at="media_bytes_per_request")
        return self
