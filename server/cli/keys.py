"""`siraya-router keys ...`: create, list, show, update, revoke and rotate gateway keys in the gateway's
store.

The store is the one `serve` uses with the same `--config` / `--data-dir`; where it is goes to
stderr on every run, so a key made in the wrong place is seen at once, not found by a 401 later.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from server.accounts.backends import DATABASE_FILE, open_account_store
from server.accounts.budget_status import key_budget_statuses
from server.accounts.key_views import key_view
from server.accounts.keys import CACHE_NAMESPACE, KeyChanges, KeyManager, KeyRecord, NewKey
from server.accounts.store import AccountStore
from server.cli.budget_args import UNCHANGED, CommandLineError, add_budget_options, budget_from
from server.cli.output import describe, print_json, print_key, print_keys
from server.cli.times import parse_time
from server.config import GatewayConfig
from server.startup import database_label

__all__ = ["KEYS_FIELDS", "add_key_commands", "announce_store", "run_keys", "store_label"]

# The only config fields the key commands read; the rest of the file (and its ${VAR}s) is not loaded.
KEYS_FIELDS = {"server": ("data_dir",), "accounts": ("database_url", "ledger_flush_interval")}


_NAMESPACE_HELP = (
    "whose response-cache answers the key shares: keys with the same namespace share hits"
    " (default: the key's own id)"
)


def add_key_commands(keys: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    create = commands.add_parser("create", parents=[common], help="create a key and print its secret once")
    create.add_argument("--name", default="default")
    create.add_argument(
        "--expires-at",
        type=parse_time,
        metavar="WHEN",
        help="2027-01-01, 2027-01-01T12:00:00Z (UTC unless a zone is given) or unix seconds",
    )
    create.add_argument("--allowed-model", action="append", default=[], metavar="MODEL")
    create.add_argument("--credit-limit", type=float, metavar="USD", help="unlimited when omitted")
    create.add_argument("--rpm", type=int, help="requests per minute")
    create.add_argument("--tpm", type=int, help="tokens per minute")
    create.add_argument("--cache-namespace", metavar="NAME", help=_NAMESPACE_HELP)
    create.add_argument("--team", metavar="TEAM_ID", help="the team that owns the key (see `teams`)")
    add_budget_options(create, update=False)
    update = commands.add_parser("update", parents=[common], help="change a key's settings")
    update.add_argument("key_id")
    update.add_argument(
        "--cache-namespace", metavar="NAME", help=_NAMESPACE_HELP + "; '' for the key's own again"
    )
    update.add_argument("--team", metavar="TEAM_ID", help="move the key to this team; '' or none for no team")
    add_budget_options(update, update=True)
    commands.add_parser("list", parents=[common], help="list keys (never their secrets)")
    for name, text in (
        ("get", "show one key"),
        ("revoke", "revoke a key"),
        ("rotate", "replace a key's secret"),
    ):
        commands.add_parser(name, parents=[common], help=text).add_argument("key_id")


def _where(config: GatewayConfig) -> tuple[str, Path | None]:
    """How to name the store, and its SQLite file (None for Postgres)."""
    if config.accounts.database_url:
        return database_label(config.accounts.database_url, ""), None
    path = Path(os.path.abspath(config.server.data_dir)) / DATABASE_FILE
    return str(path), path


def store_label(config: GatewayConfig) -> str:
    return _where(config)[0]


def announce_store(config: GatewayConfig, what: str, *, creating: bool) -> bool:
    """Say on stderr which store the command uses; True (after saying why) when there is none to use.

    Only a create may make a new SQLite file, and it says so.
    """
    label, sqlite_file = _where(config)
    source = config.source if config.source == "embedded defaults" else os.path.abspath(config.source)
    print(f"keys database: {label} (config: {source})", file=sys.stderr)
    if sqlite_file is not None and not sqlite_file.exists():
        if not creating:
            print(
                f"siraya-router: no keys database at {sqlite_file}: the gateway creates it when it first "
                "starts; give the same --config or --data-dir as the running gateway",
                file=sys.stderr,
            )
            return True
        print(
            f"siraya-router: note: {sqlite_file} did not exist and is created now; a gateway using "
            f"another data directory will not see these {what} (give it the same --config or --data-dir)",
            file=sys.stderr,
        )
    return False


async def run_keys(config: GatewayConfig, args: argparse.Namespace, as_json: bool) -> int:
    command = args.keys_command
    if announce_store(config, "keys", creating=command == "create"):
        return 1
    if command == "create" and args.expires_at is not None and args.expires_at <= time.time():
        print(f"siraya-router: --expires-at {args.expires_at} is in the past", file=sys.stderr)
        return 2
    namespace = getattr(args, "cache_namespace", None)
    if namespace and not CACHE_NAMESPACE.fullmatch(namespace):
        print(
            f"siraya-router: --cache-namespace {namespace!r}: 1 to 128 visible ASCII characters, no spaces",
            file=sys.stderr,
        )
        return 2
    try:
        budget = budget_from(args) if command in ("create", "update") else UNCHANGED
    except CommandLineError as error:
        print(f"siraya-router: keys {command}: {error}", file=sys.stderr)
        return 2
    team = getattr(args, "team", None)
    if command == "update" and namespace is None and team is None and budget is UNCHANGED:
        print(
            "siraya-router: keys update: name a setting to change (--cache-namespace, --team, --budget)",
            file=sys.stderr,
        )
        return 2
    try:
        store = await open_account_store(config)
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(
            f"siraya-router: cannot open the keys database {store_label(config)}: {reason}", file=sys.stderr
        )
        return 2
    manager = KeyManager(store)
    try:
        team_id = None if team is None or team.lower() in ("", "none") else team
        if team_id is not None and await store.team_by_id(team_id) is None:
            print(f"siraya-router: no team with id {team_id} (see `teams list`)", file=sys.stderr)
            return 1
        if command == "create":
            record, secret = await manager.create(
                NewKey(
                    name=args.name,
                    expires_at=args.expires_at,
                    allowed_models=tuple(args.allowed_model),
                    credit_limit=args.credit_limit,
                    rpm_limit=args.rpm,
                    tpm_limit=args.tpm,
                    cache_namespace=namespace or None,
                    team_id=team_id,
                    budget=None if budget is UNCHANGED else budget,
                )
            )
            if as_json:
                print_json({"key": await _view(store, record), "secret": secret})
            else:
                # The secret is the only `sk-` word and the last line: scripts take either.
                print(f"Created key {record.id} ({describe(record)}).")
                print("This is the only time the secret is shown:")
                print(secret)
            return 0
        if command == "list":
            records = await manager.list()
            statuses = await key_budget_statuses(store, records, time.time())
            if as_json:
                print_json([key_view(record, statuses.get(record.id)) for record in records])
            else:
                print_keys(records, statuses)
            return 0
        if command == "rotate":
            rotated = await manager.rotate(args.key_id)
            if rotated is None:
                print(f"siraya-router: no active key with id {args.key_id}", file=sys.stderr)
                return 1
            if as_json:
                print_json({"key": await _view(store, rotated[0]), "secret": rotated[1]})
            else:
                print(f"Rotated {args.key_id}. This is the only time the new secret is shown:")
                print(rotated[1])
            return 0
        if command == "update":
            fields = {"cache_namespace"} if namespace is not None else set()
            if team is not None:
                fields.add("team_id")
            if budget is not UNCHANGED:
                fields.add("budget")
            changes = KeyChanges(
                frozenset(fields),
                cache_namespace=namespace or None,
                team_id=team_id,
                budget=None if budget is UNCHANGED else budget,
            )
            found = await manager.update(args.key_id, changes)
        else:
            found = await (manager.get(args.key_id) if command == "get" else manager.revoke(args.key_id))
        if found is None:
            print(f"siraya-router: no key with id {args.key_id}", file=sys.stderr)
            return 1
        statuses = await key_budget_statuses(store, [found], time.time())
        if as_json:
            print_json(key_view(found, statuses.get(found.id)))
        else:
            print_key(found, statuses.get(found.id))
        return 0
    finally:
        await store.close()


async def _view(store: AccountStore, record: KeyRecord) -> dict[str, object]:
    statuses = await key_budget_statuses(store, [record], time.time())
    return key_view(record, statuses.get(record.id))
