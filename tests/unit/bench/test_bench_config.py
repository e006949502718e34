"""The gateway config `make bench` and `make bench-ab` write must load in this version of the gateway,
with the per-key in-flight limit lifted: the open-streams phase holds 5,000 streams of one key, and
the default limit (256) once turned that target into 4,744 refusals."""

from __future__ import annotations

import sys
from pathlib import Path

from server.config import load_config

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "bench"))

from bench_gateway import Source, gateway_config, has_setting, server_settings  # noqa: E402


def test_the_bench_config_loads_and_lifts_the_per_key_in_flight_limit(tmp_path: Path) -> None:
    assert has_setting(Source(ROOT), "max_in_flight_per_key")
    assert not has_setting(Source(ROOT), "no_such_setting_anywhere")
    path = tmp_path / "gateway.yaml"
    gateway_config(path, tmp_path / "data", 9, 8080, 50051, server_extra=server_settings(Source(ROOT)))
    config = load_config(path)
    assert config.server.max_in_flight_per_key == 0
    assert config.server.http_port == 8080 and config.server.grpc_port == 50051
    assert [model.id for model in config.models] == ["bench-chat", "bench-slow", "bench-embedding"]
