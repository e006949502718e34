"""What the key commands print: tables for people (rich), JSON for scripts (`--json`)."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from server.accounts.key_views import key_view
from server.accounts.keys import KeyRecord
from server.cli.times import format_time

__all__ = ["describe", "print_json", "print_key", "print_keys"]


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


def _row(record: KeyRecord) -> dict[str, str]:
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
    return "; ".join(parts)


def print_keys(records: list[KeyRecord]) -> None:
    if not records:
        print("No keys yet: create one with `keys create --name NAME`.")
        return
    rows = [_row(record) for record in records]
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in rows[0]:
        table.add_column(column, no_wrap=column in ("ID", "PREFIX", "CREATED", "EXPIRES"))
    for row in rows:
        table.add_row(*row.values())
    _console().print(table)


def print_key(record: KeyRecord) -> None:
    row = _row(record)
    if record.revoked_at is not None:
        row["REVOKED"] = format_time(record.revoked_at)
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in row.items():
        table.add_row(name.lower(), value)
    _console().print(table)
