"""The `siraya-router` command line: serve, manage keys, read usage and logs, check a config file.

One convention for every command: the global options (`--config`, `--data-dir`, `--json`) go
before or after the command; `serve` and `keys` find the data directory the same way (a relative
`server.data_dir` is relative to the config file); a failure to start is one line on stderr and
exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping

from server.cli.parser import build_parser, global_option
from server.config import ConfigError, GatewayConfig, load_config
from server.startup import StartupError

__all__ = ["main"]

# The exit code of every start-up failure and configuration error.
EXIT_CANNOT_START = 2


def _fail(message: str) -> int:
    print(f"siraya-router: {message}", file=sys.stderr)
    return EXIT_CANNOT_START


def _load(args: argparse.Namespace, only: Mapping[str, tuple[str, ...]] | None = None) -> GatewayConfig:
    """The config the global options name, with `--data-dir` applied."""
    config = load_config(global_option(args, "config"), only=only)
    data_dir = global_option(args, "data_dir")
    if data_dir:
        server = config.server.model_copy(update={"data_dir": os.path.abspath(data_dir)})
        config = config.model_copy(update={"server": server})
    return config


def _with_overrides(config: GatewayConfig, args: argparse.Namespace) -> GatewayConfig:
    overrides: dict[str, object] = {}
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None) is not None:
        overrides["http_port"] = args.port
    if getattr(args, "grpc_port", None) is not None:
        overrides["grpc_port"] = args.grpc_port
    if getattr(args, "workers", None) is not None:
        overrides["workers"] = max(1, args.workers)
    return config.model_copy(update={"server": config.server.model_copy(update=overrides)})


def _global_args(args: argparse.Namespace) -> list[str]:
    """The global options again, for a worker process (absolute paths: same data wherever it runs)."""
    passed: list[str] = []
    config_path = global_option(args, "config")
    if config_path:
        passed += ["--config", os.path.abspath(config_path)]
    data_dir = global_option(args, "data_dir")
    if data_dir:
        passed += ["--data-dir", os.path.abspath(data_dir)]
    return passed


def _supervise(config: GatewayConfig, args: argparse.Namespace) -> int:
    from server.startup import ensure_ports_free
    from server.supervisor import free_port, supervise

    server = config.server
    ensure_ports_free(
        server.host,
        (
            ("HTTP", server.http_port, "server.http_port or --port"),
            ("gRPC", server.grpc_port, "server.grpc_port or --grpc-port"),
        ),
        reuse_port=False,
    )
    # Every worker must bind the same ports, so "any free port" is decided once, here.
    http_port = server.http_port or free_port(server.host)
    grpc_port = server.grpc_port or free_port(server.host)
    worker_args = [
        *_global_args(args),
        "serve",
        "--host",
        server.host,
        "--port",
        str(http_port),
        "--grpc-port",
        str(grpc_port),
        "--workers",
        str(server.workers),
    ]
    print(
        f"Siraya Model Router: {server.workers} workers on REST http://{server.host}:{http_port}/v1, "
        f"gRPC {server.host}:{grpc_port}",
        flush=True,
    )
    return supervise(worker_args, server.workers, server.drain_seconds)


def _serve(args: argparse.Namespace) -> int:
    from server.banner import cli_command
    from server.gc_tuning import tune_for_serving
    from server.malloc_tuning import return_large_buffers
    from siraya_app.start import serve_forever

    config = _with_overrides(_load(args), args)
    if config.server.workers > 1 and not os.environ.get("SIRAYA_WORKER"):
        return _supervise(config, args)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    tune_for_serving()
    return_large_buffers()
    config_path = global_option(args, "config")
    reload_config = (lambda: _with_overrides(_load(args), args)) if config_path else None
    command = cli_command(config_path, global_option(args, "data_dir"))
    asyncio.run(serve_forever(config, reload_config, command))
    return 0


def _check(args: argparse.Namespace) -> int:
    path = args.file or global_option(args, "config")
    if not path:
        return _fail("config check needs a FILE (or --config / $SIRAYA_CONFIG)")
    config = load_config(path)
    if global_option(args, "json"):
        from server.cli.output import print_json

        print_json(
            {"file": os.path.abspath(path), "providers": len(config.providers), "models": len(config.models)}
        )
    else:
        print(f"{path}: OK ({len(config.providers)} providers, {len(config.models)} models)")
    return 0


def _keys(args: argparse.Namespace) -> int:
    from server.cli.keys import KEYS_FIELDS, run_keys

    config = _load(args, only=KEYS_FIELDS)
    return asyncio.run(run_keys(config, args, as_json=global_option(args, "json")))


def _teams(args: argparse.Namespace) -> int:
    from server.cli.teams import TEAMS_FIELDS, run_teams

    config = _load(args, only=TEAMS_FIELDS)
    return asyncio.run(run_teams(config, args, as_json=global_option(args, "json")))


def _prices(args: argparse.Namespace) -> int:
    from server.cli.prices import run_prices

    return run_prices(_load(args), as_json=global_option(args, "json"))


def _usage(args: argparse.Namespace) -> int:
    from server.cli_usage import run_usage_command

    # Reading the ledger needs only where the accounts live, not any provider's variables.
    config = _load(args, only={"server": ("data_dir",), "accounts": ("database_url",)})
    return run_usage_command(config, args)


def _config_error_text(error: ConfigError) -> str:
    """One line per problem, under a heading that counts them."""
    if len(error.problems) == 1:
        return f"invalid configuration: {error.problems[0]}"
    lines = "".join(f"\n  {problem}" for problem in error.problems)
    return f"invalid configuration, {len(error.problems)} problems:{lines}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "serve"
    try:
        if command == "config":
            return _check(args)
        if command == "keys":
            return _keys(args)
        if command == "teams":
            return _teams(args)
        if command == "prices":
            return _prices(args)
        if command in ("usage", "logs"):
            return _usage(args)
        return _serve(args)
    except ConfigError as error:
        return _fail(_config_error_text(error))
    except StartupError as error:
        return _fail(f"cannot start: {error}")
    except OSError as error:
        return _fail(f"cannot start: {error}")


if __name__ == "__main__":
    sys.exit(main())
