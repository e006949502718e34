"""The `limits:` section: budgets per request, per process and per upstream reply (issue #20)."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import ConfigError, LimitsConfig, load_config


def _load(tmp_path: Path, text: str) -> LimitsConfig:
    path = tmp_path / "siraya.yaml"
    path.write_text(text)
    return load_config(path, {"BIG": "200000000"}).limits


def test_defaults_hold_without_a_limits_section(tmp_path: Path) -> None:
    limits = _load(tmp_path, "server: {host: 127.0.0.1}\n")
    assert limits == LimitsConfig()
    assert limits.media_bytes_per_request <= limits.media_bytes_in_flight
    assert load_config(None, {}).limits == LimitsConfig()


def test_every_budget_can_be_set(tmp_path: Path) -> None:
    limits = _load(
        tmp_path,
        "limits:\n"
        "  max_json_depth: 16\n"
        "  media_urls_per_request: 4\n"
        "  media_bytes_per_url: 1000\n"
        "  media_bytes_per_request: 2000\n"
        "  media_bytes_in_flight: 3000\n"
        "  media_fetches_in_flight: 2\n"
        "  reply_bytes_chat: 10\n"
        "  reply_bytes_responses: 11\n"
        "  reply_bytes_embeddings: ${BIG}\n"
        "  reply_bytes_images: 13\n"
        "  reply_bytes_videos: 14\n"
        "  sse_event_bytes: 15\n",
    )
    assert limits == LimitsConfig(
        max_json_depth=16,
        media_urls_per_request=4,
        media_bytes_per_url=1000,
        media_bytes_per_request=2000,
        media_bytes_in_flight=3000,
        media_fetches_in_flight=2,
        reply_bytes_chat=10,
        reply_bytes_responses=11,
        reply_bytes_embeddings=200_000_000,
        reply_bytes_images=13,
        reply_bytes_videos=14,
        sse_event_bytes=15,
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("limits: {reply_bytes_audio: 5}", "limits.reply_bytes_audio: unknown field"),
        ("limits: {max_json_depth: 0}", "limits.max_json_depth: must be >= 1"),
        ("limits: {sse_event_bytes: 1.5}", "limits.sse_event_bytes: expected an integer"),
        (
            "limits: {media_bytes_per_request: 100, media_bytes_in_flight: 99}",
            "limits.media_bytes_per_request: must be <= limits.media_bytes_in_flight",
        ),
    ],
)
def test_bad_limits_name_the_field(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        _load(tmp_path, text + "\n")
