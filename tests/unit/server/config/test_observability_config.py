"""The observability section, the drain and worker settings, and the shipped deployment config."""

from __future__ import annotations

import pytest

from server.config import ConfigError, load_config, parse_config
from tests.paths import ROOT


def test_defaults_are_json_logs_with_access_lines_and_no_tracing() -> None:
    config = parse_config({}, {}, "test")
    settings = config.observability
    assert (settings.log_level, settings.log_format, settings.access_log, settings.tracing) == (
        "info",
        "json",
        True,
        False,
    )
    assert settings.admin_port is None
    assert (config.server.drain_seconds, config.server.workers) == (30.0, 1)


def test_every_field_is_read() -> None:
    config = parse_config(
        {
            "server": {"drain_seconds": 5, "workers": "${WORKERS}"},
            "observability": {
                "log_level": "DEBUG",
                "log_format": "text",
                "access_log": False,
                "admin_port": 9090,
                "tracing": True,
                "otlp_endpoint": "http://collector:4318/v1/traces",
                "service_name": "edge",
            },
        },
        {"WORKERS": "4"},
        "test",
    )
    settings = config.observability
    assert (settings.log_level, settings.log_format, settings.access_log, settings.admin_port) == (
        "debug",
        "text",
        False,
        9090,
    )
    assert (settings.tracing, settings.otlp_endpoint, settings.service_name) == (
        True,
        "http://collector:4318/v1/traces",
        "edge",
    )
    assert (config.server.drain_seconds, config.server.workers) == (5, 4)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"observability": {"log_level": "loud"}}, "observability.log_level"),
        ({"observability": {"log_format": "xml"}}, "observability.log_format"),
        ({"observability": {"tracing": "yes"}}, "observability.tracing"),
        ({"observability": {"sampling": 1}}, "observability.sampling: unknown field"),
        ({"server": {"workers": 0}}, "server.workers"),
        ({"server": {"drain_seconds": -1}}, "server.drain_seconds"),
    ],
)
def test_bad_values_name_their_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(raw, {}, "test")


def test_the_deployment_example_is_a_valid_config() -> None:
    env = {"OPENAI_API_KEY": "sk-x", "POSTGRES_PASSWORD": "pw", "SIRAYA_ADMIN_KEY": "admin"}
    config = load_config(ROOT / "deploy" / "siraya.yaml", env)
    assert config.server.workers == 2
    assert config.observability.admin_port == 9090
    assert config.accounts.database_url == "postgresql://siraya:pw@postgres:5432/siraya"
