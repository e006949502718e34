"""What `serve` prints once it listens: where, what it serves, and the exact commands to run next.

The commands name this installation's own `siraya-router` (`.venv/bin/siraya-router` after
`make run`, which is not on PATH) and repeat the `--config` / `--data-dir` the gateway was given,
so a key made with them lands in the database this gateway reads.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from server.config import GatewayConfig

__all__ = ["banner", "cli_command", "model_names"]

# Models named in the banner (and in a 404's list of available models) before "and N more".
MAX_NAMED_MODELS = 10


def cli_command(config_path: str | None, data_dir: str | None, cwd: Path | None = None) -> str:
    """How to run this installation's CLI from `cwd`, with the options that find the same data."""
    here = (cwd or Path.cwd()).absolute()
    script = Path(sys.executable).parent / "siraya-router"
    if script.is_file():
        shown = script.relative_to(here) if script.is_relative_to(here) else script
        parts = [str(shown)]
    else:
        parts = [sys.executable, "-m", "server"]
    if config_path:
        parts += ["--config", os.path.abspath(config_path)]
    if data_dir:
        parts += ["--data-dir", os.path.abspath(data_dir)]
    return shlex.join(parts)


def model_names(ids: list[str], limit: int = MAX_NAMED_MODELS) -> str:
    """`a, b, c` or `a, b, ... and 7 more`."""
    if len(ids) <= limit:
        return ", ".join(ids)
    return f"{', '.join(ids[:limit])} and {len(ids) - limit} more"


def _served(config: GatewayConfig) -> list[str]:
    served = [model.id for model in config.models]
    served += [f"{name}/<any {name} model>" for name, p in config.providers.items() if p.passthrough_models]
    return served


def banner(config: GatewayConfig, http_port: int, grpc_port: int, command: str) -> list[str]:
    host = config.server.host
    base_url = f"http://{host}:{http_port}/v1"
    served = _served(config)
    database = "Postgres" if config.accounts.database_url else os.path.abspath(config.server.data_dir)
    source = config.source if config.source == "embedded defaults" else os.path.abspath(config.source)
    lines = [
        f"Siraya Model Router: REST on {base_url}, gRPC on {host}:{grpc_port}",
        f"Config: {source}; providers: {', '.join(config.providers) or 'none'}; data: {database}",
    ]
    if not served:
        lines.append(
            "Models: none. Set a provider key (e.g. OPENAI_API_KEY) and restart, or install the local "
            "model with `make install`."
        )
        return lines
    chat = next((model.id for model in config.models if model.kind == "chat"), None)
    lines.append(f"Models ({len(served)}): {model_names(served)}")
    lines.append("Next, in another terminal from this directory:")
    lines.append(f"  {command} keys create --name my-app")
    if chat is not None:
        body = f'{{"model": "{chat}", "messages": [{{"role": "user", "content": "Hello!"}}]}}'
        lines.append(
            f"  curl {base_url}/chat/completions -H 'Authorization: Bearer <the key>' "
            f"-H 'Content-Type: application/json' -d '{body}'"
        )
    return lines
