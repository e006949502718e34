"""The `siraya-router` command line: serve, manage keys, read usage and logs, check a config file."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from importlib.metadata import PackageNotFoundError, version

from server.accounts.backends import open_account_store
from server.accounts.key_views import key_view
from server.accounts.keys import KeyManager, NewKey
from server.app import serve_forever
from server.cli_usage import COMMANDS as USAGE_COMMANDS
from server.cli_usage import add_usage_commands, run_usage_command
from server.config import ConfigError, GatewayConfig, load_config
from server.gc_tuning import tune_for_serving
from server.malloc_tuning import return_large_buffers


def _version() -> str:
    try:
        return version("siraya-model-router")
    except PackageNotFoundError:
        return "0+unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siraya-router", description="Siraya Model Router, an LLM gateway.")
    parser.add_argument("--version", action="version", version=f"siraya-router {_version()}")
    parser.add_argument("--config", default=os.environ.get("SIRAYA_CONFIG"), help="YAML config file")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="start the gateway")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int, help="HTTP port")
    serve.add_argument("--grpc-port", type=int)
    serve.add_argument("--workers", type=int, help="processes sharing the ports (default: server.workers)")
    keys = commands.add_parser("keys", help="manage gateway keys").add_subparsers(
        dest="keys_command", required=True
    )
    create = keys.add_parser("create", help="create a key and print its secret once")
    create.add_argument("--name", default="default")
    create.add_argument("--expires-at", type=int, help="unix time")
    create.add_argument("--allowed-model", action="append", default=[])
    create.add_argument("--credit-limit", type=float, help="USD; unlimited when omitted")
    create.add_argument("--rpm", type=int, help="requests per minute")
    create.add_argument("--tpm", type=int, help="tokens per minute")
    keys.add_parser("list", help="list keys (never their secrets)")
    key_commands = (("get", "show one key"), ("revoke", "revoke a key"), ("rotate", "replace a key's secret"))
    for name, text in key_commands:
        keys.add_parser(name, help=text).add_argument("key_id")
    check = commands.add_parser("config", help="configuration tools").add_subparsers(
        dest="config_command", required=True
    )
    check.add_parser("check", help="validate a config file").add_argument("file")
    add_usage_commands(commands)
    return parser


def _with_overrides(config: GatewayConfig, args: argparse.Namespace) -> GatewayConfig:
    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["http_port"] = args.port
    if args.grpc_port is not None:
        overrides["grpc_port"] = args.grpc_port
    if args.workers is not None:
        overrides["workers"] = max(1, args.workers)
    return config.model_copy(update={"server": config.server.model_copy(update=overrides)})


def _supervise(config: GatewayConfig, args: argparse.Namespace) -> int:
    from server.supervisor import free_port, supervise

    server = config.server
    # Every worker must bind the same ports, so "any free port" is decided once, here.
    http_port = server.http_port or free_port(server.host)
    grpc_port = server.grpc_port or free_port(server.host)
    worker_args = [
        *(("--config", args.config) if args.config else ()),
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


def _config_error_text(error: ConfigError) -> str:
    """One line per problem, under a heading that counts them."""
    if len(error.problems) == 1:
        return f"siraya-router: invalid configuration: {error.problems[0]}"
    lines = "".join(f"\n  {problem}" for problem in error.problems)
    return f"siraya-router: invalid configuration, {len(error.problems)} problems:{lines}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "serve"
    try:
        if command == "config":
            config = load_config(args.file)
            print(f"{args.file}: OK ({len(config.providers)} providers, {len(config.models)} models)")
            return 0
        # Key management reads only where the accounts live, so it needs no provider's variables.
        reads_store = command == "keys" or command in USAGE_COMMANDS
        config = load_config(args.config, sections=("server", "accounts") if reads_store else None)
    except ConfigError as error:
        print(_config_error_text(error), file=sys.stderr)
        return 2
    if command == "keys":
        return _keys(config, args)
    if command in USAGE_COMMANDS:
        return run_usage_command(config, args)
    if command == "serve" or args.command is None:
        if args.command is None:
            args.host = args.port = args.grpc_port = args.workers = None
        config = _with_overrides(config, args)
        if config.server.workers > 1 and not os.environ.get("SIRAYA_WORKER"):
            return _supervise(config, args)
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        tune_for_serving()
        return_large_buffers()
        try:
            reload_config = (lambda: _with_overrides(load_config(args.config), args)) if args.config else None
            asyncio.run(serve_forever(config, reload_config))
        except OSError as error:
            print(f"siraya-router: cannot start: {error}", file=sys.stderr)
            return 1
        return 0
    return 2


def _keys(config: GatewayConfig, args: argparse.Namespace) -> int:
    return asyncio.run(_keys_command(config, args))


async def _keys_command(config: GatewayConfig, args: argparse.Namespace) -> int:
    store = await open_account_store(config)
    manager = KeyManager(store)
    try:
        command = args.keys_command
        if command == "create":
            record, secret = await manager.create(
                NewKey(
                    name=args.name,
                    expires_at=args.expires_at,
                    allowed_models=tuple(args.allowed_model),
                    credit_limit=args.credit_limit,
                    rpm_limit=args.rpm,
                    tpm_limit=args.tpm,
                )
            )
            print(f"Created key {record.id} ({record.name}). This is the only time the secret is shown:")
            print(secret)
        elif command == "list":
            for record in await manager.list():
                print(json.dumps(key_view(record)))
        elif command == "rotate":
            rotated = await manager.rotate(args.key_id)
            if rotated is None:
                print(f"no active key with id {args.key_id}", file=sys.stderr)
                return 1
            print(f"Rotated {args.key_id}. This is the only time the new secret is shown:")
            print(rotated[1])
        else:
            found = await (manager.get(args.key_id) if command == "get" else manager.revoke(args.key_id))
            if found is None:
                print(f"no key with id {args.key_id}", file=sys.stderr)
                return 1
            print(json.dumps(key_view(found)))
    finally:
        await store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
