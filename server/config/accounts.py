"""The `accounts:` section: where keys, credits, the ledger and rate limits live, and moderation policies."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, model_validator

from server.config.base import (
    HttpUrl,
    NonNegative,
    PostgresUrl,
    RedisUrl,
    Settings,
    load_context,
    problem,
    problems,
)
from server.config.proxy import ProxySetting, check_environment_proxies

__all__ = ["AccountsConfig", "BudgetConfig", "ModerationConfig", "ModerationUpstreamConfig"]


class BudgetConfig(Settings):
    """At most `limit` USD per `period`: the calendar period at UTC boundaries, or the trailing one
    (`reset: rolling`; a rolling month is 30 days). See server/accounts/budgets.py."""

    limit: NonNegative
    period: Literal["day", "week", "month"]
    reset: Literal["calendar", "rolling"] = "calendar"


class ModerationUpstreamConfig(Settings):
    """An OpenAI-compatible POST {base_url}/moderations."""

    base_url: HttpUrl
    api_key: str | None = None
    model: str | None = None
    timeout: Annotated[float, Field(ge=0.001)] = 5.0
    # http://[user:pass@]host:port, or `none`; unset: the environment's HTTPS_PROXY / NO_PROXY.
    proxy: ProxySetting | None = None

    @model_validator(mode="after")
    def _environment_proxies_usable(self, info: ValidationInfo) -> ModerationUpstreamConfig:
        check_environment_proxies(self.proxy, load_context(info))
        return self


def _mapping_items(value: Any) -> Any:
    """The file's `{category: regex}` mapping as (category, regex) pairs; pairs given in Python pass."""
    if isinstance(value, dict):
        return tuple(value.items())
    if isinstance(value, (tuple, list)) and all(isinstance(pair, tuple) for pair in value):
        return value
    raise problem("expected a mapping of category to regular expression")


def _compiles(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    found = []
    for category, pattern in pairs:
        try:
            re.compile(pattern)
        except re.error as error:
            found.append((f".{category}", f"invalid regular expression: {error}"))
    if found:
        raise problems(found)
    return pairs


# category -> regular expression, matched against each input text. Taken as written: no ${VAR}.
Patterns = Annotated[tuple[tuple[str, str], ...], BeforeValidator(_mapping_items), AfterValidator(_compiles)]


class ModerationConfig(Settings):
    """One moderation policy; it applies to the listed models and keys (an empty list means all)."""

    name: str = "default"
    models: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    patterns: Patterns = ()
    upstream: ModerationUpstreamConfig | None = None
    # When the upstream cannot answer: admit the request (true) or refuse it with a 403 (false).
    fail_open: bool = True
    snippet_chars: Annotated[int, Field(ge=8)] = 80

    @model_validator(mode="after")
    def _does_something(self) -> ModerationConfig:
        if not self.patterns and self.upstream is None:
            raise problem("a policy needs patterns, an upstream, or both")
        return self


class AccountsConfig(Settings):
    """Where keys, credits, the ledger and rate limits live.

    None: SQLite under data_dir, in-process limits.
    """

    database_url: PostgresUrl | None = None
    redis_url: RedisUrl | None = None
    ledger_flush_interval: Annotated[float, Field(ge=0.001)] = 1.0
    key_cache_ttl: NonNegative = 5.0
    # Seconds a gateway process vouches for its open credit reservations; it renews that lease every
    # fifth of it. The reservations of a process that died are released by the others once its lease
    # ends (Postgres, or SQLite shared by several workers), so its credit is usable again in seconds.
    reservation_lease: Annotated[float, Field(ge=1)] = 10.0
    moderation: tuple[ModerationConfig, ...] = ()
    # What every key together may spend per period, on top of each key's and team's own limits.
    global_budget: BudgetConfig | None = None
