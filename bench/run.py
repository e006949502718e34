"""`make bench`: measure the gateway against its floors on this machine, in one run.

It starts a fast fake upstream, the gateway (auth, routing and accounting on, SQLite store, one
process pinned to CPU 0 where the machine has more than one), the bare aiohttp and grpc.aio
pass-throughs (pinned the same way), then drives each with wrk (HTTP) or bench/grpc_load.py (gRPC)
from the other CPUs. It prints a table and the targets of issues #6 and #14 as PASS/FAIL, and writes JSON to
bench-results/.

Usage: .venv/bin/python bench/run.py [--duration 5] [--latency-duration 5] [--concurrency 32]
       [--streams 5000] [--skip-streams] [--only rest,grpc,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
UPSTREAM_KEY = "sk-upstream-bench"
PROMPT = [{"role": "user", "content": "What is the meaning of life?"}]
CHAT_BODY = {"model": "bench-chat", "messages": PROMPT}
STREAM_BODY = {**CHAT_BODY, "stream": True, "stream_options": {"include_usage": True}}
EMBEDDING_BODY = {"model": "bench-embedding", "input": "The meaning of life", "dimensions": 256}
SLOW_BODY = {
    "model": "bench-slow",
    "messages": PROMPT,
    "stream": True,
    "stream_options": {"include_usage": True},
}

# Targets of issue #6, raised by #14 (ratios against floors measured in the same run).
REST_RATIO = 0.75
STREAM_RATIO = 0.75
GRPC_RATIO = 0.75
P50_OVERHEAD_MS = 0.5
P99_OVERHEAD_MS = 5.0
TTFC_OVERHEAD_MS = 1.0
OPEN_STREAMS_RSS_MB = 600
UPSTREAM_HEADROOM = 5.0


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


# processes


@dataclass
class Started:
    name: str
    process: subprocess.Popen[str]
    port: int = 0
    log: Path | None = None

    def rss_mb(self) -> dict[str, float]:
        """Current and peak resident memory of the process, from /proc (MB)."""
        values: dict[str, float] = {}
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = round(int(rest.split()[0]) / 1024, 1)
        except OSError:
            pass
        return values


class Processes:
    """Everything the bench started; each is stopped by its own process group id, nothing else."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Started] = []

    def spawn(
        self, name: str, command: list[str], *, port_line: bool, source: Source | None = None
    ) -> Started:
        log = self.workdir / f"{name}.log"
        stdout: Any = subprocess.PIPE if port_line else log.open("w")
        process = subprocess.Popen(
            command,
            cwd=source.root if source else ROOT,
            env=source.env if source else None,
            stdout=stdout,
            stderr=log.open("a") if port_line else subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        started = Started(name, process, log=log)
        self.started.append(started)
        if port_line:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.startswith("PORT "):
                raise SystemExit(f"bench: {name} did not start: {line!r}; see {log}")
            started.port = int(line.split()[1])
        return started

    def stop(self, started: Started) -> None:
        if started.process.poll() is None:
            try:
                os.killpg(started.process.pid, 15)
                started.process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(started.process.pid, 9)
                except ProcessLookupError:
                    pass
        if started in self.started:
            self.started.remove(started)

    def stop_all(self) -> None:
        for started in reversed(list(self.started)):
            self.stop(started)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench: {url} did not become ready in {timeout:.0f}s")


# CPU placement


@dataclass(frozen=True)
class Placement:
    """The gateway (and the floors) on one CPU; clients and the upstream on the others."""

    server: list[str] = field(default_factory=list)
    clients: list[str] = field(default_factory=list)
    client_cpus: int = 1
    note: str = ""

    @staticmethod
    def detect() -> Placement:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2 or shutil.which("taskset") is None:
            return Placement(note="not pinned (one CPU or no taskset): numbers include the load generator")
        others = ",".join(str(c) for c in cpus[1:])
        return Placement(
            ["taskset", "-c", str(cpus[0])],
            ["taskset", "-c", others],
            len(cpus) - 1,
            f"server pinned to CPU {cpus[0]}; upstream and load generators on CPU {others}",
        )


# load generators


@dataclass
class Sample:
    """One load measurement: throughput and latency (ms)."""

    rps: float
    p50_ms: float | None
    p99_ms: float | None
    requests: int
    errors: int
    concurrency: int
    ttfc_p50_ms: float | None = None
    ttfc_p99_ms: float | None = None
    error_samples: list[str] = field(default_factory=list)


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
{auth}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p99_us":%d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


class Load:
    def __init__(
        self, placement: Placement, workdir: Path, duration: float, latency_duration: float, concurrency: int
    ) -> None:
        self.placement = placement
        self.workdir = workdir
        self.duration = duration
        self.latency_duration = latency_duration
        self.concurrency = concurrency
        self._scripts: dict[tuple[str, str], Path] = {}

    def _script(self, body: dict[str, Any], key: str | None) -> Path:
        cache_key = (_json(body), key or "")
        if cache_key not in self._scripts:
            path = self.workdir / f"wrk-{len(self._scripts)}.lua"
            auth = f'wrk.headers["Authorization"] = "Bearer {key}"' if key else ""
            path.write_text(_WRK_SCRIPT.format(body=_json(body), auth=auth))
            self._scripts[cache_key] = path
        return self._scripts[cache_key]

    def wrk(
        self, url: str, body: dict[str, Any], key: str | None, concurrency: int, duration: float
    ) -> Sample:
        script = self._script(body, key)
        threads = max(1, min(self.placement.client_cpus, concurrency))
        base = [
            *self.placement.clients,
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(concurrency),
            "-s",
            str(script),
            url,
        ]
        # A short warm-up fills connection pools and wakes lazy paths before the measured window.
        subprocess.run([*base[:-1], "-d", "1s", url], capture_output=True, text=True, check=False)
        out = subprocess.run(
            [*base[:-1], "-d", f"{max(1, round(duration))}s", "--timeout", "10s", url],
            capture_output=True,
            text=True,
            check=False,
        )
        line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
        if line is None:
            raise SystemExit(f"bench: wrk failed on {url}: {out.stdout[-500:]} {out.stderr[-500:]}")
        data = json.loads(line[len("BENCH_JSON ") :])
        errors = data["connect"] + data["read"] + data["write"] + data["status"] + data["timeout"]
        return Sample(
            rps=round(data["requests"] / (data["duration_us"] / 1e6), 1),
            p50_ms=round(data["p50_us"] / 1000, 3),
            p99_ms=round(data["p99_us"] / 1000, 3),
            requests=data["requests"],
            errors=errors,
            concurrency=concurrency,
        )

    def grpc(self, target: str, kind: str, key: str | None, concurrency: int, duration: float) -> Sample:
        processes = max(1, min(concurrency, 2 * self.placement.client_cpus))
        command = [
            *self.placement.clients,
            PYTHON,
            str(BENCH / "grpc_load.py"),
            "--target",
            target,
            "--kind",
            kind,
            "--processes",
            str(processes),
            "--concurrency",
            str(concurrency),
            "--duration",
            f"{duration:g}",
            "--warmup",
            "1",
        ]
        if key:
            command += ["--metadata", f"authorization=Bearer {key}"]
        out = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
        if out.returncode != 0:
            raise SystemExit(f"bench: grpc_load failed: {out.stderr[-1000:]}")
        data = json.loads(out.stdout)
        return Sample(
            rps=data["rps"],
            p50_ms=data["p50_ms"],
            p99_ms=data["p99_ms"],
            requests=data["requests"],
            errors=data["errors"],
            concurrency=concurrency,
            ttfc_p50_ms=data["ttfc_p50_ms"],
            ttfc_p99_ms=data["ttfc_p99_ms"],
            error_samples=data["error_samples"],
        )

    def ttfc(self, url: str, body: dict[str, Any], key: str | None, duration: float) -> dict[str, Any]:
        command = [
            *self.placement.clients,
            PYTHON,
            str(BENCH / "stream_probe.py"),
            "--url",
            url,
            "--body",
            _json(body),
            "--duration",
            f"{duration:g}",
        ]
        if key:
            command += ["--header", f"Authorization: Bearer {key}"]
        out = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
        if out.returncode != 0:
            raise SystemExit(f"bench: stream_probe failed: {out.stderr[-1000:]}")
        result: dict[str, Any] = json.loads(out.stdout)
        return result


# the run


Probe = Callable[[int, float], Sample]


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


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "loadavg_at_start": os.getloadavg(),
    }


def gateway_config(
    path: Path, data_dir: Path, upstream_port: int, http_port: int, grpc_port: int, extra: str = ""
) -> None:
    """Only the keys the bench needs, so other sections can change under it."""
    pricing = "{input_per_million: 0.15, output_per_million: 0.6}"
    path.write_text(
        f"""server:
  host: 127.0.0.1
  http_port: {http_port}
  grpc_port: {grpc_port}
  data_dir: {data_dir}
providers:
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
    """Where the gateway's code comes from: the working tree, or one commit exported with git archive."""

    root: Path
    env: dict[str, str] | None = None

    @staticmethod
    def of(ref: str | None, workdir: Path) -> Source:
        if ref is None:
            return Source(ROOT)
        root = workdir / "src"
        root.mkdir()
        archive = subprocess.Popen(["git", "archive", ref], cwd=ROOT, stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(root)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise SystemExit(f"bench: git archive {ref} failed")
        return Source(root, {**os.environ, "PYTHONPATH": str(root)})


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
        data=_json(CHAT_BODY).encode(),
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


@contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="siraya-bench-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run(args: argparse.Namespace) -> dict[str, Any]:
    raise_fd_limit()
    placement = Placement.detect()
    info = machine()
    info["placement"] = placement.note
    info["fd_limit"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    print(
        f"bench: {info['cpu_model']}, {info['nproc']} CPUs, {placement.note}; "
        f"load average {info['loadavg_at_start']}"
    )
    only = set(args.only.split(",")) if args.only else None

    def wanted(group: str) -> bool:
        return only is None or group in only

    rows: dict[str, Row] = {}
    extra: dict[str, Any] = {}
    with workspace(args.keep) as workdir:
        procs = Processes(workdir)
        try:
            upstream_workers = max(2, placement.client_cpus)
            upstream = procs.spawn(
                "upstream",
                [
                    *placement.clients,
                    PYTHON,
                    str(BENCH / "fake_upstream.py"),
                    "--workers",
                    str(upstream_workers),
                    "--slow-chunks",
                    "3600",
                    "--release-file",
                    str(workdir / "release"),
                ],
                port_line=True,
            )
            upstream_url = f"http://127.0.0.1:{upstream.port}/v1"
            load = Load(placement, workdir, args.duration, args.latency_duration, args.concurrency)
            c, d, dl = args.concurrency, args.duration, args.latency_duration

            paths = {"chat": "/chat/completions", "stream": "/chat/completions", "embedding": "/embeddings"}
            bodies: dict[str, dict[str, Any]] = {
                "chat": CHAT_BODY,
                "stream": STREAM_BODY,
                "embedding": EMBEDDING_BODY,
            }

            # Every server is started first, so that each round measures a gateway figure and its
            # floor back to back: on a shared machine the load drifts, and a ratio of two numbers
            # taken minutes apart would measure the drift.
            config = workdir / "gateway.yaml"
            http_port, grpc_port = free_port(), free_port()
            extra_config = "observability: {access_log: false}\n" if args.no_access_log else ""
            gateway_config(config, workdir / "data", upstream.port, http_port, grpc_port, extra_config)
            source = Source.of(args.ref, workdir)
            if args.ref:
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
            gateway_target = f"127.0.0.1:{grpc_port}"
            bare_url = bare_target = ""
            bare = bare_grpc = None
            if wanted("rest"):
                bare = procs.spawn(
                    "passthrough",
                    [*placement.server, PYTHON, str(BENCH / "passthrough.py"), "--upstream", upstream_url],
                    port_line=True,
                )
                bare_url = f"http://127.0.0.1:{bare.port}/v1/chat/completions"
            if wanted("grpc"):
                bare_grpc = procs.spawn(
                    "grpc-passthrough",
                    [
                        *placement.server,
                        PYTHON,
                        str(BENCH / "grpc_passthrough.py"),
                        "--upstream",
                        upstream_url,
                    ],
                    port_line=True,
                )
                bare_target = f"127.0.0.1:{bare_grpc.port}"

            def http(url: str, body: dict[str, Any], secret: str | None) -> Probe:
                return lambda concurrency, seconds: load.wrk(url, body, secret, concurrency, seconds)

            def grpc(target: str, kind: str, secret: str | None) -> Probe:
                return lambda concurrency, seconds: load.grpc(target, kind, secret, concurrency, seconds)

            gw_chat = gateway_url + "/v1/chat/completions"
            plan: list[Planned] = [
                Planned(Row(f"upstream {kind}", kind), http(upstream_url + paths[kind], bodies[kind], None))
                for kind in ("chat", "stream", "embedding")
            ]
            plan[1].ttfc = (upstream_url + "/chat/completions", None)
            if wanted("rest"):
                plan += [
                    Planned(
                        Row("REST chat", "chat", "bare pass-through"), http(gw_chat, CHAT_BODY, key), gateway
                    ),
                    Planned(Row("bare pass-through", "chat"), http(bare_url, CHAT_BODY, None), bare),
                    Planned(
                        Row("REST chat stream", "stream", "bare stream pass-through"),
                        http(gw_chat, STREAM_BODY, key),
                        gateway,
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
                        http(gateway_url + "/v1/embeddings", EMBEDDING_BODY, key),
                        gateway,
                    ),
                ]
            if wanted("grpc"):
                plan += [
                    Planned(
                        Row("gRPC chat", "chat", "bare grpc.aio pass-through"),
                        grpc(gateway_target, "unary", key),
                        gateway,
                    ),
                    Planned(
                        Row("bare grpc.aio pass-through", "chat"), grpc(bare_target, "unary", None), bare_grpc
                    ),
                    Planned(
                        Row("gRPC chat stream", "stream", "bare grpc.aio pass-through stream"),
                        grpc(gateway_target, "stream", key),
                        gateway,
                    ),
                    Planned(
                        Row("bare grpc.aio pass-through stream", "stream"),
                        grpc(bare_target, "stream", None),
                        bare_grpc,
                    ),
                ]
            c, d, dl = args.concurrency, args.duration, args.latency_duration
            for round_number in range(1, args.rounds + 1):
                print(f"bench: round {round_number} of {args.rounds}, load average {os.getloadavg()[0]:.2f}")
                for planned in plan:
                    row = planned.row
                    row.load = _best(row.load, planned.probe(c, d), higher=True)
                    row.single = _best(row.single, planned.probe(1, dl), higher=False)
                    if planned.ttfc is not None:
                        url, secret = planned.ttfc
                        probe = load.ttfc(url, STREAM_BODY, secret, args.ttfc_duration)
                        if row.ttfc is None or (probe["ttfc_p50_ms"] or 1e9) < (
                            row.ttfc["ttfc_p50_ms"] or 1e9
                        ):
                            row.ttfc = probe
                    if planned.server is not None:
                        row.rss_mb = planned.server.rss_mb()
                    rows[row.name] = row
                    print(
                        f"  {row.name}: {row.load.rps:,.0f} req/s at c={c}, p50 {row.single.p50_ms} ms at c=1"
                    )
            for server in (bare, bare_grpc):
                if server is not None:
                    procs.stop(server)

            # 4. many open streams against the slow upstream
            if wanted("streams") and not args.skip_streams:
                print(f"bench: {args.streams} concurrent open streams (slow upstream, one chunk per second)")
                command = [
                    *placement.clients,
                    PYTHON,
                    str(BENCH / "open_streams.py"),
                    "--url",
                    gateway_url + "/v1/chat/completions",
                    "--body",
                    _json(SLOW_BODY),
                    "--header",
                    f"Authorization: Bearer {key}",
                    "--streams",
                    str(args.streams),
                    "--hold",
                    f"{args.hold:g}",
                    "--release-file",
                    str(workdir / "release"),
                ]
                before = gateway.rss_mb()
                cpu_before = _cpu_seconds(gateway.process.pid)
                out = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
                if out.returncode != 0:
                    raise SystemExit(f"bench: open_streams failed: {out.stderr[-1000:]}")
                extra["open_streams"] = {
                    **json.loads(out.stdout),
                    "rss_before_mb": before,
                    "rss_mb": gateway.rss_mb(),
                    "gateway_cpu_seconds": round(_cpu_seconds(gateway.process.pid) - cpu_before, 1),
                }
                chunks = extra["open_streams"].get("chunks_total") or 0
                if chunks:
                    # Opening, relaying and closing included: what one chunk costs the gateway's core.
                    extra["open_streams"]["gateway_cpu_us_per_chunk"] = round(
                        extra["open_streams"]["gateway_cpu_seconds"] / chunks * 1e6, 1
                    )
                print(f"  {extra['open_streams']}")
            # 5. --workers N: how one port's load spreads over processes (reported, not a target)
            if wanted("workers") and args.workers > 1:
                procs.stop(gateway)
                if cli_supports(source, ["serve"], "--workers"):
                    print(
                        f"bench: --workers {args.workers} "
                        "(not pinned; shares the CPUs with the load generator)"
                    )
                    extra["workers"] = measure_workers(
                        procs, load, source, config, args.workers, gateway_url, key, c * 2, d
                    )
                    print(f"  {extra['workers']}")
                else:
                    extra["workers"] = {"skipped": "this gateway's CLI has no serve --workers"}
            info["gateway_log_tail"] = (workdir / "gateway.log").read_text()[-2000:]
        finally:
            procs.stop_all()
    return {
        "machine": info,
        "settings": vars(args),
        "rows": {k: _row_dict(v) for k, v in rows.items()},
        **extra,
    }


def _children(pid: int) -> list[int]:
    """Every descendant of `pid`, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_workers(
    procs: Processes,
    load: Load,
    source: Source,
    config: Path,
    workers: int,
    url: str,
    key: str,
    concurrency: int,
    duration: float,
) -> dict[str, Any]:
    """REST chat through `serve --workers N`; the split is each worker's CPU time during the run."""
    supervisor = procs.spawn(
        "gateway-workers",
        [PYTHON, "-m", "server", "--config", str(config), "serve", "--workers", str(workers)],
        port_line=False,
        source=source,
    )
    try:
        wait_http(url + "/health/ready")
        deadline = time.monotonic() + 30
        pids: list[int] = []
        while time.monotonic() < deadline:
            pids = [p for p in _children(supervisor.process.pid) if _is_gateway(p)]
            if len(pids) >= workers:
                break
            time.sleep(0.2)
        before = {pid: _cpu_seconds(pid) for pid in pids}
        sample = load.wrk(url + "/v1/chat/completions", CHAT_BODY, key, concurrency, duration)
        cpu = {pid: round(_cpu_seconds(pid) - before[pid], 2) for pid in pids}
        total = sum(cpu.values()) or 1.0
        requests = _requests_per_pid(supervisor.log) if supervisor.log else {}
        return {
            "workers": workers,
            "processes_found": len(pids),
            "concurrency": concurrency,
            "rps": sample.rps,
            "p50_ms": sample.p50_ms,
            "p99_ms": sample.p99_ms,
            "errors": sample.errors,
            "cpu_seconds_per_worker": list(cpu.values()),
            "share_per_worker": [round(v / total, 2) for v in cpu.values()],
            "access_log_requests_per_worker": requests,
        }
    finally:
        procs.stop(supervisor)


def _requests_per_pid(log: Path) -> dict[str, int]:
    """Requests per worker from the gateway's JSON access log, when it writes one with a pid."""
    counts: dict[str, int] = {}
    try:
        lines = log.read_text().splitlines()
    except OSError:
        return counts
    for line in lines:
        if '"siraya.access"' not in line:
            continue
        try:
            pid = str(json.loads(line).get("pid"))
        except ValueError:
            continue
        counts[pid] = counts.get(pid, 0) + 1
    return counts


def _is_gateway(pid: int) -> bool:
    try:
        return b"server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _row_dict(row: Row) -> dict[str, Any]:
    return {
        "kind": row.kind,
        "floor": row.floor,
        "load": vars(row.load) if row.load else None,
        "c1": vars(row.single) if row.single else None,
        "ttfc": row.ttfc,
        "rss_mb": row.rss_mb,
    }


# reporting


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def overheads(result: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Per row, at concurrency 1: its p50/p99 minus the direct upstream's for the same kind of request."""
    rows = result["rows"]
    out: dict[str, dict[str, float | None]] = {}
    for name, row in rows.items():
        direct = rows.get(f"upstream {row['kind']}")
        if name.startswith("upstream") or direct is None or row["c1"] is None:
            continue
        p50 = row["c1"]["p50_ms"] - direct["c1"]["p50_ms"] if row["c1"]["p50_ms"] is not None else None
        p99 = row["c1"]["p99_ms"] - direct["c1"]["p99_ms"] if row["c1"]["p99_ms"] is not None else None
        ttfc = None
        mine = row["ttfc"] or (
            {"ttfc_p50_ms": row["c1"]["ttfc_p50_ms"]} if row["c1"].get("ttfc_p50_ms") else None
        )
        if mine and direct.get("ttfc") and mine.get("ttfc_p50_ms") is not None:
            ttfc = mine["ttfc_p50_ms"] - direct["ttfc"]["ttfc_p50_ms"]
        out[name] = {"p50_ms": p50, "p99_ms": p99, "ttfc_p50_ms": ttfc}
    return out


def targets(result: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    rows = result["rows"]
    over = result["overhead_c1"]
    checks: list[tuple[str, bool | None, str]] = []

    def rps(name: str) -> float | None:
        row = rows.get(name)
        return row["load"]["rps"] if row and row["load"] else None

    def ratio(name: str, floor: str, target: float, label: str) -> None:
        mine, base = rps(name), rps(floor)
        if mine is None or base is None or base == 0:
            checks.append((label, None, "not measured"))
            return
        checks.append(
            (
                label,
                mine / base >= target,
                f"{mine:,.0f} / {base:,.0f} req/s = {mine / base:.0%} (target >= {target:.0%})",
            )
        )

    gateway_best = max((rps(n) or 0) for n in ("REST chat", "gRPC chat"))
    if rps("upstream chat") and gateway_best:
        up = rps("upstream chat") or 0
        checks.append(
            (
                "fake upstream >= 5x the gateway",
                up >= UPSTREAM_HEADROOM * gateway_best,
                f"{up:,.0f} vs {gateway_best:,.0f} req/s = {up / gateway_best:.1f}x",
            )
        )
    ratio("REST chat", "bare pass-through", REST_RATIO, "REST chat vs bare aiohttp pass-through")
    if "REST chat" in over:
        p50, p99 = over["REST chat"]["p50_ms"], over["REST chat"]["p99_ms"]
        checks.append(
            (
                "REST chat p50 overhead at c=1",
                p50 is not None and p50 <= P50_OVERHEAD_MS,
                f"{_fmt(p50, 3)} ms (target <= {P50_OVERHEAD_MS} ms)",
            )
        )
        checks.append(
            (
                "REST chat p99 overhead at c=1",
                p99 is not None and p99 <= P99_OVERHEAD_MS,
                f"{_fmt(p99, 3)} ms (target <= {P99_OVERHEAD_MS} ms)",
            )
        )
    ratio(
        "REST chat stream",
        "bare stream pass-through",
        STREAM_RATIO,
        "REST stream vs bare stream pass-through",
    )
    if "REST chat stream" in over:
        ttfc = over["REST chat stream"]["ttfc_p50_ms"]
        checks.append(
            (
                "REST stream time-to-first-chunk overhead",
                ttfc is not None and ttfc <= TTFC_OVERHEAD_MS,
                f"{_fmt(ttfc, 3)} ms p50 (target <= {TTFC_OVERHEAD_MS} ms)",
            )
        )
    ratio("gRPC chat", "bare grpc.aio pass-through", GRPC_RATIO, "gRPC unary vs bare grpc.aio pass-through")
    ratio(
        "gRPC chat stream",
        "bare grpc.aio pass-through stream",
        GRPC_RATIO,
        "gRPC stream vs bare grpc.aio stream pass-through",
    )
    streams = result.get("open_streams")
    if streams:
        peak = streams["rss_mb"].get("VmHWM")
        ok = (
            streams["errors"] == 0
            and streams["completed"] == streams["streams"]
            and streams["peak_open"] == streams["streams"]
            and peak is not None
            and peak < OPEN_STREAMS_RSS_MB
        )
        checks.append(
            (
                f"{streams['streams']:,} concurrent open streams",
                ok,
                f"peak open {streams['peak_open']:,}, completed {streams['completed']:,}, "
                f"errors {streams['errors']}, gateway peak RSS {peak} MB (target < {OPEN_STREAMS_RSS_MB})",
            )
        )
    errors = sum((r["load"] or {}).get("errors", 0) + (r["c1"] or {}).get("errors", 0) for r in rows.values())
    checks.append(("no errors in any load run", errors == 0, f"{errors} errors"))
    return checks


def table(result: dict[str, Any]) -> str:
    info = result["machine"]
    c = result["settings"]["concurrency"]
    over = result["overhead_c1"]
    lines = [
        f"Machine: {info['cpu_model']}, nproc {info['nproc']}, Python {info['python']}; {info['placement']}.",
        f"Key: {info.get('key', '-')}; "
        f"access log {'off' if result['settings'].get('no_access_log') else 'on'}.",
        f"Commit {info['commit']}{' (with uncommitted changes)' if info['dirty'] else ''}, {info['date']}, "
        f"load average at start {', '.join(f'{x:.2f}' for x in info['loadavg_at_start'])}.",
        "",
        f"| measured | req/s c={c} | p50 / p99 ms c={c} | req/s c=1 | p50 / p99 ms c=1 "
        "| overhead p50 / p99 ms c=1 "
        "| TTFC p50 ms (overhead) | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in result["rows"].items():
        load, single = row["load"], row["c1"]
        o = over.get(name)
        overhead = f"{_fmt(o['p50_ms'], 3)} / {_fmt(o['p99_ms'], 3)}" if o else "-"
        ttfc_value = (row["ttfc"] or {}).get("ttfc_p50_ms") or single.get("ttfc_p50_ms")
        ttfc = "-"
        if ttfc_value is not None:
            ttfc = f"{ttfc_value:.3f}" + (
                f" ({o['ttfc_p50_ms']:+.3f})" if o and o["ttfc_p50_ms"] is not None else ""
            )
        lines.append(
            f"| {name} | {_fmt(load['rps'], 0)} | {_fmt(load['p50_ms'])} / {_fmt(load['p99_ms'])} "
            f"| {_fmt(single['rps'], 0)} | {_fmt(single['p50_ms'], 3)} / {_fmt(single['p99_ms'], 3)} "
            f"| {overhead} "
            f"| {ttfc} | {row['rss_mb'].get('VmHWM', '-')} |"
        )
    lines += ["", "| target | result | measured |", "|---|---|---|"]
    for label, ok, detail in result["targets"]:
        lines.append(f"| {label} | {'n/a' if ok is None else 'PASS' if ok else 'FAIL'} | {detail} |")
    streams = result.get("open_streams")
    if streams:
        lines += [
            "",
            f"Open streams: {streams['peak_open']:,} of {streams['streams']:,} open at once after "
            f"{streams['all_opened_after_s']} s, held {streams['held_all_open_s']} s; gateway RSS "
            f"{streams['rss_before_mb'].get('VmHWM')} -> {streams['rss_mb'].get('VmHWM')} MB peak; "
            f"{streams.get('gateway_cpu_us_per_chunk', '-')} us of gateway CPU per relayed chunk.",
        ]
    workers = result.get("workers")
    if workers and "rps" in workers:
        lines += [
            "",
            f"`serve --workers {workers['workers']}` (not pinned, c={workers['concurrency']}): "
            f"{workers['rps']:,.0f} req/s REST chat; requests per worker (access log) "
            f"{list(workers['access_log_requests_per_worker'].values())}, CPU share per worker "
            f"{workers['share_per_worker']}.",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per throughput measurement")
    parser.add_argument(
        "--latency-duration", type=float, default=3.0, help="seconds per concurrency-1 measurement"
    )
    parser.add_argument(
        "--ttfc-duration", type=float, default=3.0, help="seconds per time-to-first-chunk probe"
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--rounds", type=int, default=2, help="measure everything N times, keep each row's best"
    )
    parser.add_argument("--streams", type=int, default=5000, help="concurrent open streams to hold")
    parser.add_argument(
        "--hold", type=float, default=5.0, help="seconds to hold all the streams open at once"
    )
    parser.add_argument("--skip-streams", action="store_true", help="skip the open-streams test")
    parser.add_argument("--only", help="comma-separated groups: rest, grpc, streams, workers (default: all)")
    parser.add_argument("--workers", type=int, default=2, help="also measure `serve --workers N` (1: skip)")
    parser.add_argument(
        "--no-credit-limit",
        action="store_true",
        help="create the bench key without a credit limit (no credit reservation per request)",
    )
    parser.add_argument(
        "--no-access-log", action="store_true", help="run the gateway with observability.access_log: false"
    )
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary workdir (logs, config)")
    parser.add_argument(
        "--ref", help="measure this commit (exported with git archive) instead of the working tree"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print(
            "bench: wrk is not installed (make bench installs it from Debian: apt-get install wrk)",
            file=sys.stderr,
        )
        return 2
    result = run(args)
    result["overhead_c1"] = overheads(result)
    result["targets"] = targets(result)
    text = table(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (out / f"bench-{stamp}.json").write_text(json.dumps(result, indent=2))
    (out / "latest.json").write_text(json.dumps(result, indent=2))
    (out / "latest.md").write_text(text + "\n")
    print()
    print(text)
    print(f"\nbench: wrote {out / f'bench-{stamp}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
