"""The gateway under measurement: its config, where its code comes from, its key, and the start-up checks."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_bodies import CHAT_BODY, compact_json
from bench_processes import PYTHON, ROOT, Placement, Processes, Started, free_port, wait_http

UPSTREAM_KEY = "sk-upstream-bench"


def gateway_config(
    path: Path,
    data_dir: Path,
    upstream_port: int,
    http_port: int,
    grpc_port: int,
    extra: str = "",
    server_extra: str = "",
) -> None:
    """Only the keys the bench needs, so other sections can change under it. `server_extra`: more
    lines of the `server` section, each indented by two spaces and ending in a newline."""
    pricing = "{input_per_million: 0.15, output_per_million: 0.6}"
    path.write_text(
        f"""server:
  host: 127.0.0.1
  http_port: {http_port}
  grpc_port: {grpc_port}
  data_dir: {data_dir}
{server_extra}providers:
  bench:
    type: openai
    base_url: http://127.0.0.1:{upstream_port}/v1
    api_key: {UPSTREAM_KEY}
    max_connections: 12000
models:
  - {{id: bench-chat, provider: bench, upstream_model: bench-model, kind: chat, pricing: {pricing}}}
  - {{id: bench-slow, provider: bench, upstream_model: slow, kind: chat, pricing: {pricing}}}
  - {{id: bench-embedding, provider: bench, upstream_model: bench-embedding, kind: embedding,
      pricing: {{input_per_million: 0.02}}}}
{extra}"""
    )


@dataclass(frozen=True)
class Source:
    """Where the gateway's code comes from: the working tree, one commit exported with git archive,
    or another directory holding a copy of the code (a variant not committed yet)."""

    root: Path
    env: dict[str, str] | None = None

    @staticmethod
    def of(ref: str | None, workdir: Path) -> Source:
        if ref is None:
            return Source(ROOT)
        if Path(ref).is_dir():
            root = Path(ref).resolve()
            return Source(root, {**os.environ, "PYTHONPATH": str(root)})
        root = workdir / "src"
        root.mkdir()
        archive = subprocess.Popen(["git", "archive", ref], cwd=ROOT, stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(root)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise SystemExit(f"bench: git archive {ref} failed")
        return Source(root, {**os.environ, "PYTHONPATH": str(root)})


def has_setting(source: Source, name: str) -> bool:
    """Whether the gateway's config knows the setting `name` (its models forbid unknown keys, so the
    bench sets a newer setting only for a version that has it)."""
    server = source.root / "server"
    files = [*server.glob("config*.py"), *server.glob("config/*.py")]
    return any(name in file.read_text() for file in files)


def server_settings(source: Source) -> str:
    """The `server` lines the bench adds for `gateway_config`. One bench key stands for every client,
    and the open-streams phase holds thousands of its streams at once: the per-key in-flight limit
    (256 by default) is lifted, where there is one."""
    return "  max_in_flight_per_key: 0\n" if has_setting(source, "max_in_flight_per_key") else ""


def cli_supports(source: Source, command: list[str], option: str) -> bool:
    """Whether the gateway's CLI has `option`, so the bench keeps working across versions of it."""
    out = subprocess.run(
        [PYTHON, "-m", "server", *command, "--help"],
        cwd=source.root,
        env=source.env,
        capture_output=True,
        text=True,
        check=False,
    )
    return option in out.stdout


def create_key(config: Path, source: Source, credit_limit: float | None) -> str:
    command = [PYTHON, "-m", "server", "--config", str(config), "keys", "create", "--name", "bench"]
    if credit_limit is not None:
        command += ["--credit-limit", f"{credit_limit:g}"]
    out = subprocess.run(
        command, cwd=source.root, env=source.env, capture_output=True, text=True, check=False
    )
    secret = next((w for w in out.stdout.split() if w.startswith("sk-")), None)
    if out.returncode != 0 or secret is None:
        raise SystemExit(f"bench: could not create a key: {out.stdout[-500:]} {out.stderr[-500:]}")
    return secret


def smoke_test(url: str, key: str) -> None:
    """One real request first, so a broken gateway fails loudly instead of benchmarking error pages."""
    request = urllib.request.Request(
        url,
        data=compact_json(CHAT_BODY).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise SystemExit(f"bench: the gateway answered {error.code}: {error.read()[:500]!r}") from None
    content = body["choices"][0]["message"]["content"]
    if not content:
        raise SystemExit(f"bench: unexpected gateway reply {body}")


def grpc_smoke_test(target: str, key: str) -> None:
    import grpc

    from siraya.router.v1 import chat_pb2, chat_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        params = chat_pb2.ChatCompletionParams(
            model="bench-chat", messages=[chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, text="hi")]
        )
        reply = stub.CreateChatCompletion(
            chat_pb2.CreateChatCompletionRequest(params=params),
            metadata=(("authorization", f"Bearer {key}"),),
            timeout=10,
        )
    if not reply.completion.choices or not reply.completion.choices[0].message.content:
        raise SystemExit(f"bench: unexpected gRPC reply {reply}")


@dataclass(frozen=True)
class Gateway:
    """The started gateway: its process, its REST base URL and gRPC target, the bench key and its code."""

    started: Started
    url: str
    target: str
    key: str
    config: Path
    source: Source


def start_gateway(
    procs: Processes,
    placement: Placement,
    workdir: Path,
    upstream_port: int,
    args: argparse.Namespace,
    info: dict[str, Any],
) -> Gateway:
    """Configure, key and start the gateway pinned like the floors, then smoke-test REST and gRPC.

    `args` are run.py's options (ref, no_access_log, no_credit_limit); `info` gets the commit measured,
    the key's kind and the gateway's pid and config.
    """
    config = workdir / "gateway.yaml"
    http_port, grpc_port = free_port(), free_port()
    extra_config = "observability: {access_log: false}\n" if args.no_access_log else ""
    source = Source.of(args.ref, workdir)
    server_extra = server_settings(source)
    gateway_config(config, workdir / "data", upstream_port, http_port, grpc_port, extra_config, server_extra)
    if args.ref and Path(args.ref).is_dir():
        info["commit"] = f"the code in {args.ref}"
    elif args.ref:
        info["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", args.ref],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        info["dirty"] = False
    credit_limit = None
    if not args.no_credit_limit and cli_supports(source, ["keys", "create"], "--credit-limit"):
        credit_limit = 1_000_000.0
    info["key"] = (
        f"credit limit ${credit_limit:,.0f} (credits reserved and settled per request)"
        if credit_limit
        else "no credit limit"
    )
    if server_extra:
        info["key"] += "; per-key in-flight limit lifted (one key stands for every client)"
    key = create_key(config, source, credit_limit)
    gateway = procs.spawn(
        "gateway",
        [*placement.server, PYTHON, "-m", "server", "--config", str(config), "serve"],
        port_line=False,
        source=source,
    )
    gateway_url = f"http://127.0.0.1:{http_port}"
    wait_http(gateway_url + "/health/ready")
    smoke_test(gateway_url + "/v1/chat/completions", key)
    grpc_smoke_test(f"127.0.0.1:{grpc_port}", key)
    info["gateway"] = {"pid": gateway.process.pid, "config": config.read_text()}
    return Gateway(gateway, gateway_url, f"127.0.0.1:{grpc_port}", key, config, source)
