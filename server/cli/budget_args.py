"""Budget and limit options shared by `keys` and `teams`: `--budget USD --period day --reset rolling`,
and `none` to clear a setting on `update`."""

from __future__ import annotations

import argparse
import math
from typing import Any

from server.accounts.budgets import PERIODS, RESETS, Budget, BudgetPeriod, BudgetReset
from server.accounts.money import usd_to_micros

__all__ = [
    "UNCHANGED",
    "CommandLineError",
    "add_budget_options",
    "add_limit_options",
    "budget_from",
    "optional_number",
]

# What an option not given means on `update`: leave the setting as it is.
UNCHANGED: Any = object()


class CommandLineError(ValueError):
    """A combination of options that cannot be carried out; exit 2 with its message."""


def _amount(text: str) -> float | str:
    if text.strip().lower() == "none":
        return "none"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an amount in USD (or 'none')") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"'{text}' must be a finite amount >= 0")
    return value


def _count(text: str) -> int | str:
    if text.strip().lower() == "none":
        return "none"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number (or 'none')") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be >= 0")
    return value


def add_budget_options(parser: argparse.ArgumentParser, *, update: bool) -> None:
    clear = "; 'none' removes it" if update else ""
    parser.add_argument(
        "--budget",
        type=_amount,
        metavar="USD",
        help=f"at most this much per period, besides any credit limit{clear}",
    )
    parser.add_argument("--period", choices=PERIODS, help="the budget's period (default: month)")
    parser.add_argument(
        "--reset",
        choices=RESETS,
        help="calendar: from each UTC midnight, Monday or 1st (default); rolling: the trailing period",
    )


def add_limit_options(parser: argparse.ArgumentParser, *, update: bool) -> None:
    """--credit-limit, --rpm and --tpm; on `update`, 'none' clears one."""
    none = " ('none': no limit)" if update else " (unlimited when omitted)"
    parser.add_argument("--credit-limit", type=_amount, metavar="USD", help="lifetime credit" + none)
    parser.add_argument("--rpm", type=_count, help="requests per minute" + none)
    parser.add_argument("--tpm", type=_count, help="tokens per minute" + none)


def budget_from(args: argparse.Namespace) -> Budget | None:
    """The budget the options set: None for none (or 'none'), UNCHANGED when not given."""
    amount = getattr(args, "budget", None)
    if amount is None:
        if args.period or args.reset:
            raise CommandLineError("--period and --reset need --budget USD")
        return UNCHANGED  # type: ignore[no-any-return]
    if amount == "none":
        if args.period or args.reset:
            raise CommandLineError("--budget none takes no --period or --reset")
        return None
    return Budget(
        usd_to_micros(amount), BudgetPeriod(args.period or "month"), BudgetReset(args.reset or "calendar")
    )


def optional_number(value: float | int | str | None) -> Any:
    """An option's value: None for 'none', UNCHANGED when not given."""
    if value is None:
        return UNCHANGED
    return None if value == "none" else value
