"""`siraya-router teams ...`: create, list, show, update and delete teams in the gateway's store.

A team owns keys (`keys create --team`, `keys update --team`) and caps them together: a lifetime
credit limit, a period budget and rpm/tpm over all its keys. The store is the one `serve` uses, found
as `keys` finds it.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from server.accounts.backends import open_account_store
from server.accounts.budget_status import team_spend
from server.accounts.key_views import team_view
from server.accounts.money import usd_to_micros
from server.accounts.store import AccountStore
from server.accounts.teams import NewTeam, TeamChanges, TeamManager, TeamRecord
from server.cli.budget_args import (
    UNCHANGED,
    CommandLineError,
    add_budget_options,
    add_limit_options,
    budget_from,
    optional_number,
)
from server.cli.keys import KEYS_FIELDS, announce_store, store_label
from server.cli.output import print_json, print_team, print_teams
from server.config import GatewayConfig

__all__ = ["TEAMS_FIELDS", "add_team_commands", "run_teams"]

TEAMS_FIELDS = KEYS_FIELDS


def add_team_commands(teams: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    commands = teams.add_subparsers(dest="teams_command", required=True, metavar="COMMAND")
    create = commands.add_parser("create", parents=[common], help="create a team")
    create.add_argument("--name", required=True)
    add_limit_options(create, update=False)
    add_budget_options(create, update=False)
    update = commands.add_parser("update", parents=[common], help="change a team's settings")
    update.add_argument("team_id")
    update.add_argument("--name")
    add_limit_options(update, update=True)
    add_budget_options(update, update=True)
    commands.add_parser("list", parents=[common], help="list teams with their spend")
    for name, text in (("get", "show one team"), ("delete", "delete a team that owns no key")):
        commands.add_parser(name, parents=[common], help=text).add_argument("team_id")


def _changes(args: argparse.Namespace) -> TeamChanges:
    values: dict[str, Any] = {
        "name": UNCHANGED if args.name is None else args.name,
        "credit_limit": optional_number(args.credit_limit),
        "budget": budget_from(args),
        "rpm_limit": optional_number(args.rpm),
        "tpm_limit": optional_number(args.tpm),
    }
    given = {field: value for field, value in values.items() if value is not UNCHANGED}
    if not given:
        raise CommandLineError("name a setting to change (--name, --credit-limit, --budget, --rpm, --tpm)")
    if given.get("credit_limit") is not None:
        given["credit_limit"] = usd_to_micros(given["credit_limit"])
    return TeamChanges(frozenset(given), **given)


def _new(args: argparse.Namespace) -> NewTeam:
    for option in ("credit_limit", "rpm", "tpm"):
        if getattr(args, option) == "none":
            raise CommandLineError(f"--{option.replace('_', '-')} none: leave it out for no limit")
    budget = budget_from(args)
    return NewTeam(
        name=args.name,
        credit_limit=None if args.credit_limit is None else usd_to_micros(args.credit_limit),
        budget=None if budget is UNCHANGED else budget,
        rpm_limit=args.rpm,
        tpm_limit=args.tpm,
    )


async def _show(store: AccountStore, record: TeamRecord, as_json: bool) -> None:
    lifetime, status = await team_spend(store, record, time.time())
    if as_json:
        print_json(team_view(record, lifetime, status))
    else:
        print_team(record, lifetime, status)


async def run_teams(config: GatewayConfig, args: argparse.Namespace, as_json: bool) -> int:
    command = args.teams_command
    if announce_store(config, "teams", creating=command == "create"):
        return 1
    try:
        spec = _new(args) if command == "create" else _changes(args) if command == "update" else None
    except CommandLineError as error:
        print(f"siraya-router: teams {command}: {error}", file=sys.stderr)
        return 2
    try:
        store = await open_account_store(config)
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(
            f"siraya-router: cannot open the keys database {store_label(config)}: {reason}", file=sys.stderr
        )
        return 2
    teams = TeamManager(store)
    try:
        if command == "list":
            found = [(team, *await team_spend(store, team, time.time())) for team in await teams.list()]
            if as_json:
                print_json([team_view(*team) for team in found])
            else:
                print_teams(found)
            return 0
        if command == "delete":
            outcome = await teams.delete(args.team_id)
            if outcome == "has_keys":
                print(
                    f"siraya-router: team {args.team_id} still owns keys (revoked ones too): move them first"
                    " with `keys update KEY_ID --team ''`",
                    file=sys.stderr,
                )
                return 1
            if outcome == "deleted":
                print_json({"id": args.team_id, "deleted": True}) if as_json else print(
                    f"Deleted {args.team_id}."
                )
                return 0
            record = None
        elif isinstance(spec, NewTeam):
            record = await teams.create(spec)
        elif isinstance(spec, TeamChanges):
            record = await teams.update(args.team_id, spec)
        else:
            record = await teams.get(args.team_id)
        if record is None:
            print(f"siraya-router: no team with id {args.team_id}", file=sys.stderr)
            return 1
        await _show(store, record, as_json)
        return 0
    finally:
        await store.close()
