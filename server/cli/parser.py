"""The `siraya-router` argument parser: one set of global options, accepted before or after the command.

Every (sub)command parser shares the global options through `parents`, with SUPPRESS defaults, so a
value given anywhere survives and an option not given leaves no attribute: `global_option` then
falls back to the environment or the default.
"""

from __future__ import annotations

import argparse
import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from server.cli.keys import add_key_commands
from server.cli.prices import add_price_commands
from server.cli.teams import add_team_commands
from server.cli_usage import add_usage_commands

__all__ = ["CONFIG_ENV", "build_parser", "global_option"]

CONFIG_ENV = "SIRAYA_CONFIG"
_DEFAULTS: dict[str, Any] = {"config": None, "data_dir": None, "json": False}


def _version() -> str:
    try:
        return version("siraya-model-router")
    except PackageNotFoundError:
        return "0+unknown"


def _global_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    options = common.add_argument_group("global options (before or after the command)")
    options.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help=f"YAML config file (default: ${CONFIG_ENV}, else the embedded defaults)",
    )
    options.add_argument(
        "--data-dir",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="SQLite data directory, instead of server.data_dir (which is relative to the config file)",
    )
    options.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print JSON for scripts instead of tables",
    )
    return common


def global_option(args: argparse.Namespace, name: str) -> Any:
    if hasattr(args, name):
        return getattr(args, name)
    if name == "config":
        return os.environ.get(CONFIG_ENV) or None
    return _DEFAULTS[name]


def build_parser() -> argparse.ArgumentParser:
    common = _global_options()
    parser = argparse.ArgumentParser(
        prog="siraya-router", description="Siraya Model Router, an LLM gateway.", parents=[common]
    )
    parser.add_argument("--version", action="version", version=f"siraya-router {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", parents=[common], help="start the gateway (the default command)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int, help="HTTP port")
    serve.add_argument("--grpc-port", type=int)
    serve.add_argument("--workers", type=int, help="processes sharing the ports (default: server.workers)")
    keys = commands.add_parser("keys", parents=[common], help="manage gateway keys")
    add_key_commands(keys, common)
    teams = commands.add_parser("teams", parents=[common], help="manage teams: keys that share limits")
    add_team_commands(teams, common)
    config = commands.add_parser("config", parents=[common], help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    check = config_commands.add_parser(
        "check", parents=[common], help="validate a config file (FILE, else --config) without starting"
    )
    check.add_argument("file", nargs="?")
    prices = commands.add_parser("prices", parents=[common], help="what the served models cost")
    add_price_commands(prices, common)
    add_usage_commands(commands)
    return parser
