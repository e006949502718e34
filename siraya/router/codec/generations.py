"""A ledger record (admin.proto's Generation) as JSON: what GET /v1/generation(s), the console's
log and `siraya-router logs --json` all show, from one function."""

from __future__ import annotations

from typing import Any

from siraya.router.v1 import admin_pb2

__all__ = ["attempt_json", "generation_json"]


def generation_json(gen: admin_pb2.Generation) -> dict[str, Any]:
    return {
        "id": gen.id,
        "key_id": gen.key_id,
        "created_at": gen.created_at,
        "model": gen.model,
        "model_served": gen.model_served if gen.HasField("model_served") else None,
        "provider_name": gen.provider if gen.HasField("provider") else None,
        "status": gen.status,
        "http_status": gen.http_status,
        "error_code": gen.error_code if gen.HasField("error_code") else None,
        "tokens_prompt": gen.tokens_prompt,
        "tokens_completion": gen.tokens_completion,
        "native_tokens_cached": gen.tokens_cached,
        "native_tokens_cache_write": gen.tokens_cache_write,
        "native_tokens_reasoning": gen.tokens_reasoning,
        "total_cost": gen.total_cost,
        "latency": gen.latency_ms,
        "ttft": gen.ttft_ms if gen.HasField("ttft_ms") else None,
        "streamed": gen.streamed,
        "cancelled": gen.status == "cancelled",
        "cache_hit": gen.status == "cache_hit",
        "cache_saved": gen.cache_saved,
        # Only with observability.store_bodies; null otherwise.
        "prompt_text": gen.prompt_text if gen.HasField("prompt_text") else None,
        "answer_text": gen.answer_text if gen.HasField("answer_text") else None,
        "token_source": gen.token_source,
        # What the providers were paid for it, every attempt included (total_cost: the key's charge).
        "upstream_cost": gen.upstream_cost,
        "upstream_reported_cost": gen.upstream_reported_cost
        if gen.HasField("upstream_reported_cost")
        else None,
        "attempts": [attempt_json(attempt) for attempt in gen.attempts],
    }


def attempt_json(attempt: admin_pb2.GenerationAttempt) -> dict[str, Any]:
    return {
        "provider": attempt.provider,
        "model": attempt.model,
        "upstream_model": attempt.upstream_model,
        "outcome": attempt.outcome,
        "start_ms": attempt.start_ms,
        "latency_ms": attempt.latency_ms,
        "error_code": attempt.error_code if attempt.HasField("error_code") else None,
        "http_status": attempt.http_status if attempt.HasField("http_status") else None,
        "tokens_prompt": attempt.tokens_prompt,
        "tokens_completion": attempt.tokens_completion,
        "token_source": attempt.token_source,
        "upstream_cost": attempt.upstream_cost,
        "upstream_reported_cost": attempt.upstream_reported_cost
        if attempt.HasField("upstream_reported_cost")
        else None,
    }
