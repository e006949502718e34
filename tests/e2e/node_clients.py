"""The JavaScript client libraries of the e2e suite (tests/e2e/js/), installed by npm into a cache dir.

`ensure_installed()` copies `package.json`, `package-lock.json` and the scripts into the cache dir
(`SIRAYA_JS_CLIENTS_DIR`, else ~/.cache/siraya-router/e2e-js) and runs `npm ci` there once per lock
file, so the repository stays free of node_modules. It returns that directory, or the reason the
clients cannot run (no node, an old node, npm failing offline): the tests skip with that reason.

`.ci/run` calls it ahead of the tests: `python -m tests.e2e.node_clients`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["NodeClients", "ensure_installed"]

SOURCE_DIR = Path(__file__).parent / "js"
MIN_NODE_MAJOR = 18
INSTALL_TIMEOUT = 300


@dataclass(frozen=True)
class NodeClients:
    """Where the installed clients are (`directory`), or why there are none (`unavailable`)."""

    directory: Path | None
    unavailable: str = ""

    def script(self, name: str) -> Path:
        assert self.directory is not None, self.unavailable
        return self.directory / name


def _cache_dir() -> Path:
    configured = os.environ.get("SIRAYA_JS_CLIENTS_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "siraya-router" / "e2e-js"


def _node_problem(node: str | None, npm: str | None) -> str:
    if node is None or npm is None:
        return "node and npm are not installed (apt-get install nodejs npm)"
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
        major = int(version.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return f"{node} --version failed"
    return "" if major >= MIN_NODE_MAJOR else f"node {version.strip()} is older than {MIN_NODE_MAJOR}"


@cache
def ensure_installed() -> NodeClients:
    node, npm = shutil.which("node"), shutil.which("npm")
    problem = _node_problem(node, npm)
    if problem:
        return NodeClients(None, problem)
    assert npm is not None
    target = _cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    lock = (SOURCE_DIR / "package-lock.json").read_bytes()
    stamp = hashlib.sha256(lock + (SOURCE_DIR / "package.json").read_bytes()).hexdigest()
    with open(target / ".install.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        for source in SOURCE_DIR.iterdir():
            if source.is_file():
                shutil.copyfile(source, target / source.name)
        stamp_file = target / ".installed"
        if stamp_file.exists() and stamp_file.read_text() == stamp and (target / "node_modules").is_dir():
            return NodeClients(target)
        try:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=target,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return NodeClients(None, f"npm ci took longer than {INSTALL_TIMEOUT}s in {target}")
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return NodeClients(None, f"npm ci failed in {target}: {last}")
        stamp_file.write_text(stamp)
    return NodeClients(target)


if __name__ == "__main__":
    clients = ensure_installed()
    print(f"JS client libraries: {clients.directory or clients.unavailable}")
    sys.exit(0)
