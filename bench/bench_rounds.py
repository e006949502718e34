"""What is measured each round (every gateway row next to its floor) and the rounds themselves."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from bench_bodies import CHAT_BODY, EMBEDDING_BODY, STREAM_BODY
from bench_gateway import Gateway
from bench_load import Load, Probe, Sample
from bench_processes import Started


@dataclass
class Row:
    """One thing measured: at `concurrency` for throughput and at 1 for latency."""

    name: str
    kind: str  # what its direct-upstream reference is: chat, stream or embedding
    floor: str | None = None
    load: Sample | None = None
    single: Sample | None = None
    ttfc: dict[str, Any] | None = None
    rss_mb: dict[str, float] = field(default_factory=dict)


@dataclass
class Planned:
    """One row to measure each round: how to load it, the process whose memory it reports."""

    row: Row
    probe: Probe
    server: Started | None = None
    ttfc: tuple[str, str | None] | None = None  # (url, key) for a time-to-first-chunk probe


def _best(kept: Sample | None, new: Sample, *, higher: bool) -> Sample:
    """The better of two rounds: more req/s under load, or a lower p50 at concurrency 1.

    Other processes only ever slow a run down, so the best round is the closest to the truth.
    """
    if kept is None:
        return new
    if higher:
        return new if new.rps > kept.rps else kept
    return new if (new.p50_ms or 1e9) < (kept.p50_ms or 1e9) else kept


def plan_rows(
    load: Load, upstream_url: str, gateway: Gateway, bare: Started | None, bare_grpc: Started | None
) -> list[Planned]:
    """The direct-upstream rows, then the REST rows when the aiohttp floor runs and the gRPC rows when
    the grpc.aio floor runs, each gateway row followed by its floor."""
    paths = {"chat": "/chat/completions", "stream": "/chat/completions", "embedding": "/embeddings"}
    bodies: dict[str, dict[str, Any]] = {
        "chat": CHAT_BODY,
        "stream": STREAM_BODY,
        "embedding": EMBEDDING_BODY,
    }

    def http(url: str, body: dict[str, Any], secret: str | None) -> Probe:
        return lambda concurrency, seconds: load.wrk(url, body, secret, concurrency, seconds)

    def grpc(target: str, kind: str, secret: str | None) -> Probe:
        return lambda concurrency, seconds: load.grpc(target, kind, secret, concurrency, seconds)

    key, gateway_target = gateway.key, gateway.target
    gw_chat = gateway.url + "/v1/chat/completions"
    plan: list[Planned] = [
        Planned(Row(f"upstream {kind}", kind), http(upstream_url + paths[kind], bodies[kind], None))
        for kind in ("chat", "stream", "embedding")
    ]
    plan[1].ttfc = (upstream_url + "/chat/completions", None)
    if bare is not None:
        bare_url = f"http://127.0.0.1:{bare.port}/v1/chat/completions"
        plan += [
            Planned(
                Row("REST chat", "chat", "bare pass-through"),
                http(gw_chat, CHAT_BODY, key),
                gateway.started,
            ),
            Planned(Row("bare pass-through", "chat"), http(bare_url, CHAT_BODY, None), bare),
            Planned(
                Row("REST chat stream", "stream", "bare stream pass-through"),
                http(gw_chat, STREAM_BODY, key),
                gateway.started,
                (gw_chat, key),
            ),
            Planned(
                Row("bare stream pass-through", "stream"),
                http(bare_url, STREAM_BODY, None),
                bare,
                (bare_url, None),
            ),
            Planned(
                Row("REST embeddings", "embedding"),
                http(gateway.url + "/v1/embeddings", EMBEDDING_BODY, key),
                gateway.started,
            ),
        ]
    if bare_grpc is not None:
        bare_target = f"127.0.0.1:{bare_grpc.port}"
        plan += [
            Planned(
                Row("gRPC chat", "chat", "bare grpc.aio pass-through"),
                grpc(gateway_target, "unary", key),
                gateway.started,
            ),
            Planned(Row("bare grpc.aio pass-through", "chat"), grpc(bare_target, "unary", None), bare_grpc),
            Planned(
                Row("gRPC chat stream", "stream", "bare grpc.aio pass-through stream"),
                grpc(gateway_target, "stream", key),
                gateway.started,
            ),
            Planned(
                Row("bare grpc.aio pass-through stream", "stream"),
                grpc(bare_target, "stream", None),
                bare_grpc,
            ),
        ]
    return plan


def measure_rounds(
    plan: list[Planned],
    load: Load,
    rounds: int,
    concurrency: int,
    duration: float,
    latency_duration: float,
    ttfc_duration: float,
) -> dict[str, Row]:
    """Every planned row `rounds` times, in order; each row keeps its best round."""
    rows: dict[str, Row] = {}
    c, d, dl = concurrency, duration, latency_duration
    for round_number in range(1, rounds + 1):
        print(f"bench: round {round_number} of {rounds}, load average {os.getloadavg()[0]:.2f}")
        for planned in plan:
            row = planned.row
            row.load = _best(row.load, planned.probe(c, d), higher=True)
            row.single = _best(row.single, planned.probe(1, dl), higher=False)
            if planned.ttfc is not None:
                url, secret = planned.ttfc
                probe = load.ttfc(url, STREAM_BODY, secret, ttfc_duration)
                if row.ttfc is None or (probe["ttfc_p50_ms"] or 1e9) < (row.ttfc["ttfc_p50_ms"] or 1e9):
                    row.ttfc = probe
            if planned.server is not None:
                row.rss_mb = planned.server.rss_mb()
            rows[row.name] = row
            print(f"  {row.name}: {row.load.rps:,.0f} req/s at c={c}, p50 {row.single.p50_ms} ms at c=1")
    return rows


def row_dict(row: Row) -> dict[str, Any]:
    return {
        "kind": row.kind,
        "floor": row.floor,
        "load": vars(row.load) if row.load else None,
        "c1": vars(row.single) if row.single else None,
        "ttfc": row.ttfc,
        "rss_mb": row.rss_mb,
    }
