"""`siraya-router usage` and `siraya-router logs`: the console's usage and log views in a terminal.

Like `keys`, they read the accounts store the config names (SQLite under data_dir, or Postgres), so
they work with the gateway stopped and need no key: whoever can read the store is its operator. Tables
for people (rich), `--json` for scripts, in the shapes GET /v1/usage and /v1/generations answer.

    siraya-router usage --by model --since 24h [--bucket hour] [--key K] [--json]
    siraya-router logs --key K --status 5xx [--model M] [--provider P] [--since 1h] [--limit 50] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from server.accounts.backends import open_account_store
from server.accounts.key_views import generation
from server.accounts.ledger_queries import (
    BUCKETS,
    GROUPS,
    MAX_BUCKETS,
    MAX_PAGE,
    Cursor,
    GenerationFilter,
    UsageQuery,
    parse_time,
    valid_status,
)
from server.accounts.money import micros_to_usd, usd_to_micros
from server.accounts.store import LedgerRecord
from server.config import GatewayConfig
from siraya.router.codec.generations import generation_json

__all__ = ["COMMANDS", "add_usage_commands", "generation_view", "run_usage_command"]

COMMANDS = ("usage", "logs")
PIPED_WIDTH = 220


def add_usage_commands(commands: Any) -> None:
    """Add `usage` and `logs` to the CLI's subcommands."""
    usage = commands.add_parser(
        "usage", help="requests, tokens, cost, upstream cost, errors and latency, grouped"
    )
    usage.add_argument("--by", choices=sorted(GROUPS), help="group by key, model or provider")
    usage.add_argument("--bucket", choices=sorted(BUCKETS), help="also split into time buckets")
    _filters(usage, default_since="24h")
    logs = commands.add_parser("logs", help="the newest requests, filtered, with their upstream attempts")
    _filters(logs, default_since=None)
    logs.add_argument("--min-cost", type=float, help="USD")
    logs.add_argument("--max-cost", type=float, help="USD")
    logs.add_argument("--limit", type=int, default=50, help=f"1-{MAX_PAGE} (default 50)")
    logs.add_argument("--cursor", help="continue after the page that printed this cursor")


def _filters(parser: argparse.ArgumentParser, default_since: str | None) -> None:
    parser.add_argument("--key", help="a key id")
    parser.add_argument("--model", help="the model id requested")
    parser.add_argument("--provider", help="the provider that served")
    parser.add_argument("--status", help="success, error, cancelled, 4xx, 5xx or one status such as 429")
    parser.add_argument(
        "--since",
        default=default_since,
        help=f"unix seconds or a duration back from now: 15m, 24h, 7d (default {default_since or 'all'})",
    )
    parser.add_argument("--until", help="unix seconds or a duration back from now")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")


class UsageError(Exception):
    """A bad option, said in one line."""


def _filter(args: argparse.Namespace, now: float) -> GenerationFilter:
    if args.status is not None and not valid_status(args.status):
        raise UsageError(
            f"--status must be success, error, cancelled, 4xx, 5xx or a status; got {args.status!r}"
        )
    moments: dict[str, float | None] = {}
    for name in ("since", "until"):
        text = getattr(args, name)
        moments[name] = None if text is None else parse_time(text, now)
        if text is not None and moments[name] is None:
            raise UsageError(
                f"--{name} must be unix seconds or a duration such as 15m, 24h or 7d; got {text!r}"
            )
    min_cost, max_cost = getattr(args, "min_cost", None), getattr(args, "max_cost", None)
    return GenerationFilter(
        key_id=args.key,
        model=args.model,
        provider=args.provider,
        status=args.status,
        since=moments["since"],
        until=moments["until"],
        min_cost_micros=None if min_cost is None else usd_to_micros(min_cost),
        max_cost_micros=None if max_cost is None else usd_to_micros(max_cost),
    )


def generation_view(record: LedgerRecord) -> dict[str, Any]:
    """A record as GET /v1/generations shows it (the same function makes both)."""
    return generation_json(generation(record))


def _when(moment: float | None) -> str:
    if moment is None:
        return "—"
    return datetime.datetime.fromtimestamp(moment, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _usd(amount: float) -> str:
    return f"${amount:.6f}".rstrip("0").rstrip(".") if amount else "$0"


async def _usage(config: GatewayConfig, args: argparse.Namespace, out: Console) -> int:
    now = time.time()
    where = _filter(args, now)
    until = where.until if where.until is not None else now
    since = where.since if where.since is not None else until - 86400
    width = BUCKETS[args.bucket] if args.bucket else None
    if width is not None and (until - since) / width > MAX_BUCKETS:
        raise UsageError(f"that range holds more than {MAX_BUCKETS} {args.bucket}s: use a wider --bucket")
    query = UsageQuery(dataclasses.replace(where, since=since, until=until), args.by, width)
    store = await open_account_store(config)
    try:
        rows = await store.usage(query)
    finally:
        await store.close()
    data: list[dict[str, Any]] = [
        {
            "bucket_start": row.bucket_start,
            "group": row.group,
            "requests": row.requests,
            "prompt_tokens": row.prompt_tokens,
            "completion_tokens": row.completion_tokens,
            "total_tokens": row.prompt_tokens + row.completion_tokens,
            "cost": micros_to_usd(row.cost_micros),
            "upstream_cost": micros_to_usd(row.upstream_cost_micros),
            "errors": row.errors,
            "p50_latency_ms": row.p50_latency_ms,
            "p95_latency_ms": row.p95_latency_ms,
        }
        for row in rows
    ]
    if args.json:
        body = {"object": "list", "since": since, "until": until, "group_by": args.by, "bucket": args.bucket}
        print(json.dumps({**body, "data": data}))
        return 0
    table = Table(title=f"Usage {_when(since)} to {_when(until)} UTC")
    if args.bucket:
        table.add_column(args.bucket.capitalize())
    if args.by:
        table.add_column(args.by.capitalize())
    for name in ("Requests", "Tokens", "Cost", "Upstream cost", "Errors", "p50 ms", "p95 ms"):
        table.add_column(name, justify="right")
    for item in data:
        cells = [_when(item["bucket_start"])] if args.bucket else []
        if args.by:
            cells.append(item["group"] or "—")
        cells += [
            f"{item['requests']:,}",
            f"{item['total_tokens']:,}",
            _usd(item["cost"]),
            _usd(item["upstream_cost"]),
            f"{item['errors']:,}",
            f"{item['p50_latency_ms']:,.1f}",
            f"{item['p95_latency_ms']:,.1f}",
        ]
        table.add_row(*cells)
    if not data:
        out.print("No requests in that range.")
        return 0
    out.print(table)
    return 0


def _attempts_text(record: LedgerRecord) -> str:
    parts = []
    for attempt in record.attempts:
        outcome = attempt.outcome if attempt.error_code is None else attempt.error_code
        parts.append(f"{attempt.provider} {outcome} {attempt.latency_ms:.0f}ms")
    return " → ".join(parts) or "—"


async def _logs(config: GatewayConfig, args: argparse.Namespace, out: Console) -> int:
    if not 1 <= args.limit <= MAX_PAGE:
        raise UsageError(f"--limit must be between 1 and {MAX_PAGE}")
    cursor = None
    if args.cursor:
        cursor = Cursor.decode(args.cursor)
        if cursor is None:
            raise UsageError("--cursor is not a cursor this command printed")
    where = _filter(args, time.time())
    store = await open_account_store(config)
    try:
        page = await store.list_generations(where, args.limit, cursor)
    finally:
        await store.close()
    next_cursor = None if page.next_cursor is None else page.next_cursor.encode()
    if args.json:
        data = [generation_view(record) for record in page.records]
        print(
            json.dumps(
                {
                    "object": "list",
                    "data": data,
                    "has_more": next_cursor is not None,
                    "next_cursor": next_cursor,
                }
            )
        )
        return 0
    if not page.records:
        out.print("No requests match.")
        return 0
    table = Table(title="Requests, newest first")
    for name, justify in (
        ("Time (UTC)", "left"),
        ("Request id", "left"),
        ("Key", "left"),
        ("Model", "left"),
        ("Status", "right"),
        ("Tokens", "right"),
        ("Cost", "right"),
        ("Upstream", "right"),
        ("Latency", "right"),
        ("Attempts", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for record in page.records:
        status = str(record.http_status) + (f" {record.error_code}" if record.error_code else "")
        table.add_row(
            _when(record.created_at),
            record.request_id,
            record.key_id,
            record.model_requested,
            status,
            f"{record.prompt_tokens + record.completion_tokens:,}",
            _usd(micros_to_usd(record.cost_micros)),
            _usd(micros_to_usd(record.upstream_cost_micros)),
            f"{record.latency_ms:,.0f} ms",
            _attempts_text(record),
        )
    out.print(table)
    if next_cursor is not None:
        out.print(f"More: --cursor {next_cursor}")
    return 0


def run_usage_command(config: GatewayConfig, args: argparse.Namespace) -> int:
    """Run `usage` or `logs`; 2 for a bad option (said on stderr), else 0."""
    # A terminal's own width; piped into a file or a pager, rows wide enough not to fold ids.
    out = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else PIPED_WIDTH)
    try:
        if args.command == "usage":
            return asyncio.run(_usage(config, args, out))
        return asyncio.run(_logs(config, args, out))
    except UsageError as error:
        print(f"siraya-router {args.command}: {error}", file=sys.stderr)
        return 2
