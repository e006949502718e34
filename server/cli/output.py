"""What the key and team commands print: tables for people (rich), JSON for scripts (`--json`)."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from server.accounts.budget_status import BudgetStatus
from server.accounts.budgets import Budget, BudgetReset, Spend
from server.accounts.key_views import key_view
from server.accounts.keys import KeyRecord
from server.accounts.money import micros_to_usd
from server.accounts.teams import TeamRecord
from server.cli.times import format_time

__all__ = ["describe", "print_json", "print_key", "print_keys", "print_team", "print_teams"]


def _console() -> Console:
    # Piped output is not cut to 80 columns: a script or a test reads whole ids.
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=max(console.width, 200))
    return console


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def _usd(value: float | None) -> str:
    return "" if value is None else f"${value:,.4f}".rstrip("0").rstrip(".")


def _credit(record: KeyRecord) -> str:
    used = _usd(record.credit_used) or "$0"
    return (
        f"{used} of {_usd(record.credit_limit)}" if record.credit_limit is not None else f"{used} (no limit)"
    )


def _budget(budget: Budget | None, status: BudgetStatus | None) -> str:
    """`$1.2 of $5/day`, `$5/week (rolling)`: the budget, and what its window spent when known."""
    if budget is None:
        return ""
    text = f"{_usd(micros_to_usd(budget.limit)) or '$0'}/{budget.period.value}"
    if budget.reset is BudgetReset.ROLLING:
        text += " (rolling)"
    if status is not None:
        text = f"{_usd(micros_to_usd(status.spend.total)) or '$0'} of {text}"
    return text


def _row(record: KeyRecord, status: BudgetStatus | None = None) -> dict[str, str]:
    view = key_view(record)
    return {
        "ID": record.id,
        "NAME": record.name,
        "PREFIX": record.prefix,
        "STATE": view["state"],
        "CREATED": format_time(record.created_at),
        "EXPIRES": format_time(record.expires_at) or "never",
        "MODELS": ", ".join(record.allowed_models) or "all",
        "CREDIT": _credit(record),
        "RPM": "" if record.rpm_limit is None else str(record.rpm_limit),
        "TPM": "" if record.tpm_limit is None else str(record.tpm_limit),
        "CACHE": record.cache_namespace or "own",
        "TEAM": record.team_id or "",
        "BUDGET": _budget(record.budget, status),
    }


def describe(record: KeyRecord) -> str:
    """One line about a key, without its prefix (so the secret is the only `sk-` word printed)."""
    row = _row(record)
    limits = [f"{name.lower()} {row[name]}" for name in ("RPM", "TPM") if row[name]]
    parts = [
        f"name {record.name}",
        f"expires {row['EXPIRES']}",
        f"models {row['MODELS']}",
        f"credit {row['CREDIT']}" if record.credit_limit is not None else "no credit limit",
        *limits,
    ]
    if record.cache_namespace:
        parts.append(f"cache namespace {record.cache_namespace}")
    if record.team_id:
        parts.append(f"team {record.team_id}")
    if record.budget is not None:
        parts.append(f"budget {row['BUDGET']}")
    return "; ".join(parts)


def print_keys(records: list[KeyRecord], statuses: dict[str, BudgetStatus] | None = None) -> None:
    if not records:
        print("No keys yet: create one with `keys create --name NAME`.")
        return
    rows = [_row(record, (statuses or {}).get(record.id)) for record in records]
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in rows[0]:
        table.add_column(column, no_wrap=column in ("ID", "PREFIX", "CREATED", "EXPIRES"))
    for row in rows:
        table.add_row(*row.values())
    _console().print(table)


def print_key(record: KeyRecord, status: BudgetStatus | None = None) -> None:
    row = _row(record, status)
    if record.revoked_at is not None:
        row["REVOKED"] = format_time(record.revoked_at)
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in row.items():
        table.add_row(name.lower(), value)
    _console().print(table)


def _team_row(record: TeamRecord, lifetime: Spend, status: BudgetStatus | None) -> dict[str, str]:
    used = _usd(micros_to_usd(lifetime.total)) or "$0"
    limit = record.credit_limit
    return {
        "ID": record.id,
        "NAME": record.name,
        "CREATED": format_time(record.created_at),
        "CREDIT": f"{used} of {_usd(micros_to_usd(limit))}" if limit is not None else f"{used} (no limit)",
        "BUDGET": _budget(record.budget, status),
        "RPM": "" if record.rpm_limit is None else str(record.rpm_limit),
        "TPM": "" if record.tpm_limit is None else str(record.tpm_limit),
    }


def print_teams(teams: list[tuple[TeamRecord, Spend, BudgetStatus | None]]) -> None:
    if not teams:
        print("No teams yet: create one with `teams create --name NAME`.")
        return
    rows = [_team_row(*team) for team in teams]
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in rows[0]:
        table.add_column(column, no_wrap=column in ("ID", "CREATED"))
    for row in rows:
        table.add_row(*row.values())
    _console().print(table)


def print_team(record: TeamRecord, lifetime: Spend, status: BudgetStatus | None) -> None:
    row = _team_row(record, lifetime, status)
    if status is not None:
        row["RESETS"] = format_time(status.window.resets_at) or "rolling"
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in row.items():
        table.add_row(name.lower(), value)
    _console().print(table)
