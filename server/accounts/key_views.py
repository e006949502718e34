"""How keys, teams and ledger records are shown: as protos for the admin API, as JSON for the CLI.

Never the secret and never its hash: only the visible prefix. A budget is shown with its window now
(budget_status.BudgetStatus) when the caller has it.
"""

from __future__ import annotations

import time
from typing import Any

from server.accounts.budget_status import BudgetStatus
from server.accounts.budgets import Budget, BudgetPeriod, BudgetReset, Spend
from server.accounts.keys import KeyRecord, cache_namespace_of
from server.accounts.money import micros_to_usd
from server.accounts.store import LedgerRecord
from server.accounts.teams import TeamRecord
from siraya.router.v1 import admin_pb2

_PERIODS = {
    BudgetPeriod.DAY: admin_pb2.BUDGET_PERIOD_DAY,
    BudgetPeriod.WEEK: admin_pb2.BUDGET_PERIOD_WEEK,
    BudgetPeriod.MONTH: admin_pb2.BUDGET_PERIOD_MONTH,
}
_RESETS = {
    BudgetReset.CALENDAR: admin_pb2.BUDGET_RESET_CALENDAR,
    BudgetReset.ROLLING: admin_pb2.BUDGET_RESET_ROLLING,
}
PERIOD_NAMES = {value: period.value for period, value in _PERIODS.items()}
RESET_NAMES = {value: reset.value for reset, value in _RESETS.items()}


def key_state(record: KeyRecord, now: float) -> str:
    if record.revoked_at is not None:
        return "revoked"
    if record.expires_at is not None and record.expires_at <= now:
        return "expired"
    return "active"


def budget_proto(budget: Budget) -> admin_pb2.Budget:
    return admin_pb2.Budget(
        limit=micros_to_usd(budget.limit), period=_PERIODS[budget.period], reset=_RESETS[budget.reset]
    )


def budget_status_proto(status: BudgetStatus) -> admin_pb2.BudgetStatus:
    out = admin_pb2.BudgetStatus(
        spent=micros_to_usd(status.spend.used),
        reserved=micros_to_usd(status.spend.reserved),
        remaining=micros_to_usd(status.remaining),
        window_start=status.window.start,
    )
    if status.window.resets_at is not None:
        out.resets_at = status.window.resets_at
    return out


def budget_json(budget: Budget | None, status: BudgetStatus | None) -> dict[str, Any] | None:
    """A budget as JSON, with its window now when known: what the REST API and the CLI print."""
    if budget is None:
        return None
    found: dict[str, Any] = {
        "limit": micros_to_usd(budget.limit),
        "period": budget.period.value,
        "reset": budget.reset.value,
    }
    if status is not None:
        found.update(
            spent=micros_to_usd(status.spend.used),
            reserved=micros_to_usd(status.spend.reserved),
            remaining=micros_to_usd(status.remaining),
            window_start=status.window.start,
            resets_at=status.window.resets_at,
        )
    return found


def team_info(record: TeamRecord, lifetime: Spend, status: BudgetStatus | None) -> admin_pb2.TeamInfo:
    info = admin_pb2.TeamInfo(
        id=record.id,
        name=record.name,
        created_at=record.created_at,
        credit_used=micros_to_usd(lifetime.used),
        credit_reserved=micros_to_usd(lifetime.reserved),
    )
    if record.credit_limit is not None:
        info.credit_limit = micros_to_usd(record.credit_limit)
    if record.budget is not None:
        info.budget.CopyFrom(budget_proto(record.budget))
    if status is not None:
        info.budget_status.CopyFrom(budget_status_proto(status))
    if record.rpm_limit is not None:
        info.rpm_limit = record.rpm_limit
    if record.tpm_limit is not None:
        info.tpm_limit = record.tpm_limit
    return info


def team_view(record: TeamRecord, lifetime: Spend, status: BudgetStatus | None) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "created_at": record.created_at,
        "credit_limit": None if record.credit_limit is None else micros_to_usd(record.credit_limit),
        "credit_used": micros_to_usd(lifetime.used),
        "credit_reserved": micros_to_usd(lifetime.reserved),
        "budget": budget_json(record.budget, status),
        "rpm_limit": record.rpm_limit,
        "tpm_limit": record.tpm_limit,
    }


def key_view(record: KeyRecord, status: BudgetStatus | None = None) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "prefix": record.prefix,
        "state": key_state(record, time.time()),
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "allowed_models": list(record.allowed_models),
        "credit_limit": record.credit_limit,
        "credit_used": record.credit_used,
        "rpm_limit": record.rpm_limit,
        "tpm_limit": record.tpm_limit,
        "cache_namespace": cache_namespace_of(record),
        "team_id": record.team_id,
        "budget": budget_json(record.budget, status),
    }


def key_info(record: KeyRecord, status: BudgetStatus | None = None) -> admin_pb2.KeyInfo:
    info = admin_pb2.KeyInfo(
        id=record.id,
        name=record.name,
        prefix=record.prefix,
        created_at=record.created_at,
        allowed_models=record.allowed_models,
        credit_used=record.credit_used,
        cache_namespace=cache_namespace_of(record),
    )
    if record.expires_at is not None:
        info.expires_at = record.expires_at
    if record.revoked_at is not None:
        info.revoked_at = record.revoked_at
    if record.credit_limit is not None:
        info.credit_limit = record.credit_limit
    if record.rpm_limit is not None:
        info.rpm_limit = record.rpm_limit
    if record.tpm_limit is not None:
        info.tpm_limit = record.tpm_limit
    if record.team_id is not None:
        info.team_id = record.team_id
    if record.budget is not None:
        info.budget.CopyFrom(budget_proto(record.budget))
    if status is not None:
        info.budget_status.CopyFrom(budget_status_proto(status))
    return info


def generation(record: LedgerRecord) -> admin_pb2.Generation:
    out = admin_pb2.Generation(
        id=record.request_id,
        key_id=record.key_id,
        created_at=record.created_at,
        model=record.model_requested,
        status=record.status,
        http_status=record.http_status,
        tokens_prompt=record.prompt_tokens,
        tokens_completion=record.completion_tokens,
        tokens_cached=record.cached_tokens,
        tokens_cache_write=record.cache_write_tokens,
        tokens_reasoning=record.reasoning_tokens,
        total_cost=micros_to_usd(record.cost_micros),
        latency_ms=record.latency_ms,
        streamed=record.streamed,
        cache_saved=micros_to_usd(record.cache_saved_micros),
        token_source=record.token_source,
        upstream_cost=micros_to_usd(record.upstream_cost_micros),
    )
    if record.model_served is not None:
        out.model_served = record.model_served
    if record.provider is not None:
        out.provider = record.provider
    if record.error_code is not None:
        out.error_code = record.error_code
    if record.ttft_ms is not None:
        out.ttft_ms = record.ttft_ms
    if record.prompt_text is not None:
        out.prompt_text = record.prompt_text
    if record.answer_text is not None:
        out.answer_text = record.answer_text
    if record.upstream_reported_cost_micros is not None:
        out.upstream_reported_cost = micros_to_usd(record.upstream_reported_cost_micros)
    for attempt in record.attempts:
        item = out.attempts.add(
            provider=attempt.provider,
            model=attempt.model,
            upstream_model=attempt.upstream_model,
            outcome=attempt.outcome,
            start_ms=attempt.start_ms,
            latency_ms=attempt.latency_ms,
            tokens_prompt=attempt.prompt_tokens,
            tokens_completion=attempt.completion_tokens,
            upstream_cost=micros_to_usd(attempt.upstream_cost_micros),
            token_source=attempt.token_source,
        )
        if attempt.error_code is not None:
            item.error_code = attempt.error_code
        if attempt.http_status is not None:
            item.http_status = attempt.http_status
        if attempt.reported_cost_micros is not None:
            item.upstream_reported_cost = micros_to_usd(attempt.reported_cost_micros)
    return out
