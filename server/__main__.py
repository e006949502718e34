"""The `siraya-router` command line: serve, manage keys, check a config file."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from importlib.metadata import PackageNotFoundError, version

from server.accounts.keys import KeyManager, NewKey
from server.app import open_store, serve_forever
from server.config import ConfigError, GatewayConfig, load_config


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
    keys = commands.add_parser("keys", help="manage gateway keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create a key and print its secret once")
    create.add_argument("--name", default="default")
    create.add_argument("--expires-at", type=int, help="unix time")
    create.add_argument("--allowed-model", action="append", default=[])
    keys.add_parser("list", help="list keys (never their secrets)")
    revoke = keys.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_id")
    check = commands.add_parser("config", help="configuration tools").add_subparsers(dest="config_command", required=True)
    check.add_parser("check", help="validate a config file").add_argument("file")
    return parser


def _with_overrides(config: GatewayConfig, args: argparse.Namespace) -> GatewayConfig:
    server = config.server
    if args.host:
        server = dataclasses.replace(server, host=args.host)
    if args.port is not None:
        server = dataclasses.replace(server, http_port=args.port)
    if args.grpc_port is not None:
        server = dataclasses.replace(server, grpc_port=args.grpc_port)
    return dataclasses.replace(config, server=server)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "serve"
    try:
        if command == "config":
            config = load_config(args.file)
            print(f"{args.file}: OK ({len(config.providers)} providers, {len(config.models)} models)")
            return 0
        config = load_config(args.config)
    except ConfigError as error:
        print(f"siraya-router: invalid configuration: {error}", file=sys.stderr)
        return 2
    if command == "keys":
        return _keys(config, args)
    if command == "serve" or args.command is None:
        if args.command is None:
            args.host = args.port = args.grpc_port = None
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        try:
            asyncio.run(serve_forever(_with_overrides(config, args)))
        except OSError as error:
            print(f"siraya-router: cannot start: {error}", file=sys.stderr)
            return 1
        return 0
    return 2


def _keys(config: GatewayConfig, args: argparse.Namespace) -> int:
    store = open_store(config)
    manager = KeyManager(store)
    try:
        if args.keys_command == "create":
            record, secret = manager.create(
                NewKey(name=args.name, expires_at=args.expires_at, allowed_models=tuple(args.allowed_model))
            )
            print(f"Created key {record.id} ({record.name}). This is the only time the secret is shown:")
            print(secret)
        elif args.keys_command == "list":
            for record in store.list_keys():
                state = "revoked" if record.revoked_at else "active"
                print(json.dumps({"id": record.id, "name": record.name, "prefix": record.prefix, "state": state}))
        elif args.keys_command == "revoke":
            if manager.revoke(args.key_id) is None:
                print(f"no key with id {args.key_id}", file=sys.stderr)
                return 1
            print(f"Revoked {args.key_id}")
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
