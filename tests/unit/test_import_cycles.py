"""No import cycles, and every module imports on its own (aiohttp's tests/test_circular_imports.py
is the model).

The graph counts every import: module level, inside functions (a lazy import is a cycle hidden, not
removed) and under TYPE_CHECKING (a type-only cycle still ties two modules' designs together). A
submodule importing its own package's `__init__` is not an edge: Python runs that first anyway.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("server", "http_bridge", "siraya", "siraya_app")
GENERATED = "siraya.router.v1"
# Cycles still being taken apart: this set may only shrink (issue #14 took the last ones apart).
KNOWN_CYCLES: set[frozenset[str]] = set()
# The program's entry point may start the composition root; nothing else in the core may.
ENTRY_POINTS = {"server.__main__"}


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(parts)
            if not name.startswith(GENERATED):
                found[name] = path
    return found


def imported_by(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    targets: set[str] = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    edges: set[str] = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name and not name.startswith(target + "."):
            edges.add(target)
    return edges


def strongly_connected(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Tarjan's algorithm, iteratively: every group of modules that import one another."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[frozenset[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(frozenset(group))
    return groups


def test_no_module_imports_itself_through_others() -> None:
    known = modules()
    graph = {name: imported_by(name, path, known) for name, path in known.items()}
    cycles = set(strongly_connected(graph))
    assert cycles - KNOWN_CYCLES == set(), [sorted(cycle) for cycle in cycles - KNOWN_CYCLES]
    assert KNOWN_CYCLES - cycles == set(), "a known cycle is gone: remove it from KNOWN_CYCLES"


def _package_edges() -> dict[str, set[str]]:
    known = modules()
    return {name: imported_by(name, path, known) for name, path in known.items()}


# What the bridge may use from the core: the shared error table, ids, metrics and logs, and the parsing
# of what it forwards. It reaches the gateway only through the gRPC stubs, never its internals.
SHARED_WITH_THE_BRIDGE = {
    "server",
    "server.errors",
    "server.rpc_status",
    "server.observability",
    "server.observability.ids",
    "server.observability.metrics",
    "server.observability.logs",
    "server.routing.timeouts",
    "server.accounts.ledger_queries",
}


def test_the_bridge_reaches_the_core_only_through_its_shared_modules() -> None:
    graph = _package_edges()
    inward = sorted(
        f"{name} -> {edge}"
        for name, edges in graph.items()
        if name.split(".")[0] == "http_bridge"
        for edge in edges
        if edge.split(".")[0] in ("server", "siraya_app") and edge not in SHARED_WITH_THE_BRIDGE
    )
    assert inward == [], inward


def test_the_core_never_imports_the_bridge_or_the_composition_root() -> None:
    graph = _package_edges()
    upward = sorted(
        f"{name} -> {edge}"
        for name, edges in graph.items()
        if name.split(".")[0] in ("server", "siraya") and name not in ENTRY_POINTS
        for edge in edges
        if edge.split(".")[0] in ("http_bridge", "siraya_app")
    )
    assert upward == [], upward


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [frozenset({"a", "b", "c"})]


# Third-party packages a fork server loads once; each module is then imported in its own fork, so
# ours start from nothing every time (the per-module fresh interpreter, at a fork's cost).
_PRELOAD = (
    "grpc",
    "grpc.aio",
    "grpc_status.rpc_status",
    "grpc_health.v1.health",
    "aiohttp",
    "aiohttp.web",
    "google.protobuf",
    "orjson",
    "numpy",
    "prometheus_client",
    "yaml",
    "redis.asyncio",
    "asyncpg",
    "httptools",
    "pydantic",
    "tiktoken",
)
# The generated code is not ours to untangle; loading it once keeps each fork to our own modules.
_GENERATED_MODULES = tuple(
    f"{GENERATED}.{path.stem}" for path in sorted((ROOT / "siraya/router/v1").glob("*_pb2*.py"))
)
_FORK_EACH = """
import importlib, os, sys
for name in sys.argv[2].split(","):
    try:
        importlib.import_module(name)
    except ImportError:
        pass  # an optional extra that is not installed: its importers say so themselves
failed = []
running = {}
names = sys.argv[1].split(",")
while names or running:
    while names and len(running) < 4:
        name = names.pop()
        pid = os.fork()
        if pid == 0:
            try:
                importlib.import_module(name)
            except BaseException as error:
                sys.stdout.write(f"{name}: {error!r}\\n")
                sys.stdout.flush()
                os._exit(1)
            os._exit(0)
        running[pid] = name
    pid, status = os.wait()
    if status:
        failed.append(running[pid])
    del running[pid]
sys.exit(1 if failed else 0)
"""


@pytest.mark.timeout(900)
def test_every_module_imports_on_its_own() -> None:
    names = ",".join(sorted(modules()))
    done = subprocess.run(
        [sys.executable, "-c", _FORK_EACH, names, ",".join(_PRELOAD + _GENERATED_MODULES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=850,
    )
    assert done.returncode == 0, done.stdout + done.stderr
