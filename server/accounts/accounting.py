"""The real Metering: rate limits, credit reservations, moderation and one ledger record per request.

    admit   rate limit (rpm, tpm on the estimate)  -> 429 with x-ratelimit-* and Retry-After
            reserve a true upper bound at the highest price among the deployments of the model and
            of its fallbacks -> 402; with no reply cap from the client, cap the reply at what the
            reservation pays for
            moderation                              -> 403 content_flagged (the reservation is released)
    settle  charge the actual usage at the serving deployment's price, release the rest,
            correct the tpm bucket by actual minus estimated tokens, write the ledger record;
            a charge beyond the reservation (an upstream billing more than it was allowed) is
            still charged in full, logged and counted (siraya_credit_overruns_total)
    fail    release the whole reservation, give the estimated tokens back, write the ledger record
    cache hit  (admit_cache_hit) rate limit as one request of no tokens -> 429; moderation -> 403;
            no credit moves; a ledger record at zero cost, with what the answer would have cost

With `store_bodies` (observability.store_bodies), admission starts a BodyCapture of the prompt on
the request's outcome, the gateway adds the answer to it, and the record keeps both texts.

The reservation (reservation.py) bounds the prompt by its UTF-8 bytes first, which needs no
tokenizer and is exact enough when the key has credit to spare; only when that bound does not fit
(refused, or granted less than the reply ceiling) is the prompt counted with the real tokenizer
(prompt_bound.py), in a worker thread, and the reservation asked again or the cap raised to match.

Budgets and teams (budgets.py, teams.py): a key with a period budget, a key in a team, and every key
when the gateway has a global budget reserve at each of those levels too, in the same store step
(teams.spend_levels, computed from the injected `clock`), so a request fits every level or is
refused with a 402 that names the level. A team's rpm/tpm are checked with the key's, in one step.

A key without a credit limit reserves nothing (a reservation is a store write on the hot path);
its charges are still settled, so its usage is tracked. Reservations use an id of their own, not
the request id: a client may resend an X-Request-Id, and that must never look like a replay.
Store writes on the way out are shielded, so a client that goes away cannot cancel its own charge.
A store whose credits live in this process (store.SyncCredits, the single-worker SQLite default)
reserves, settles and releases synchronously instead: nothing to shield, no task, no thread hop.

The meter a request settles or fails through is account_meter.py; what a consumption costs,
charges.py; the priced attempts of a ledger record, ledger_attempts.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from server.accounts.account_meter import AccountMeter
from server.accounts.budget_status import level_refusal
from server.accounts.budgets import Budget, SpendLevel
from server.accounts.candidates import CandidateCache, deployment_price
from server.accounts.charges import charge
from server.accounts.keys import KeyRecord
from server.accounts.ledger_entry import record_request
from server.accounts.ledger_writer import LedgerWriter
from server.accounts.metering import Consumption, Demand, Meter, Metering
from server.accounts.moderation import Moderator
from server.accounts.money import micros_to_usd
from server.accounts.prompt_bound import prompt_shape
from server.accounts.reservation import apply_output_cap, bounds, reply_cap
from server.accounts.store import (
    NOT_LOADED,
    AccountStore,
    LimitStore,
    SyncCredits,
    TeamRates,
)
from server.accounts.teams import TeamManager, TeamRecord, spend_levels
from server.errors import GatewayError, InsufficientCredits, RateLimited
from server.observability.bodies import BodyCapture
from server.providers.base import RequestContext
from server.routing.catalogue import CatalogueEntry, Deployment

__all__ = ["AccountMetering", "deployment_price"]

logger = logging.getLogger("siraya.accounts")

# A reservation this old belongs to a request whose process died; its credit goes back. The backstop:
# a dead process's leased reservations go back within seconds (`_keep_leases`).
STALE_RESERVATION_SECONDS = 2 * 3600.0
DEFAULT_LEASE_SECONDS = 10.0
STALE_SWEEP_SECONDS = 600.0
# Model kinds billed by tokens: their reservation bounds the prompt.
_TOKEN_KINDS = frozenset({"chat", "embedding", "any"})


class AccountMetering(Metering):
    def __init__(
        self,
        accounts: AccountStore,
        limits: LimitStore,
        ledger: LedgerWriter,
        moderator: Moderator | None = None,
        *,
        store_bodies: bool = False,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        global_budget: Budget | None = None,
        teams: TeamManager | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.accounts = accounts
        self.global_budget = global_budget
        self.teams = teams or TeamManager(accounts)
        # Unix seconds: the budgets' windows and the rate limits' buckets move with it.
        self.clock = clock
        self.limits = limits
        self.ledger = ledger
        self.moderator = moderator
        self.store_bodies = store_bodies
        # Credits held in this process are moved without a task or a thread hop.
        self.sync_credits = accounts if isinstance(accounts, SyncCredits) else None
        self.lease_seconds = lease_seconds
        if hasattr(accounts, "lease_seconds"):
            accounts.lease_seconds = lease_seconds
        self._sweeper: asyncio.Task[None] | None = None
        self._leases: asyncio.Task[None] | None = None
        self._candidates = CandidateCache()

    def start(self) -> None:
        """Start background work on the running loop: the lease on this process's reservations (and
        the reclaim of dead processes' ones), and the stale-reservation sweep."""
        loop = asyncio.get_running_loop()
        if self._sweeper is None:
            self._sweeper = loop.create_task(self._sweep(), name="reservation-sweep")
        if self._leases is None:
            self._leases = loop.create_task(self._keep_leases(), name="reservation-leases")

    async def admit(
        self,
        key: KeyRecord,
        entry: CatalogueEntry,
        demand: Demand,
        ctx: RequestContext,
        fallbacks: Sequence[CatalogueEntry] = (),
    ) -> Meter:
        started = time.monotonic()
        ctx.key_id = key.id
        if self.store_bodies:
            ctx.outcome.bodies = BodyCapture(demand.params)
        estimated = demand.prompt_tokens + demand.max_output_tokens
        # Most keys have no team: no call for them (every call on this path is counted).
        team = rates = None
        if key.team_id is not None:
            team = await self.teams.cached(key.team_id)
            rates = _team_rates(team)
        if key.rpm_limit is not None or key.tpm_limit is not None or rates is not None:
            await self._limit(key, entry, ctx, started, estimated, team, rates)
        tokens_limited = key.tpm_limit is not None or (rates is not None and rates.tpm is not None)
        meter = AccountMeter(self, key, entry, ctx, started, estimated if tokens_limited else 0)
        meter.team_id = None if rates is None else rates.id
        levels: tuple[SpendLevel, ...] = ()
        if team is not None or key.budget is not None or self.global_budget is not None:
            levels = spend_levels(key, team, self.global_budget, self.clock())
        if key.credit_limit is not None or levels:
            await self._reserve(key, entry, fallbacks, demand, meter, levels, team)
            ctx.reservation_id = meter.reservation_id
        if self.moderator is not None and self.moderator.enabled:
            try:
                await self.moderator.check(key.id, entry.id, demand.params)
            except GatewayError as error:
                await meter.fail(error)
                raise
        return meter

    async def _limit(
        self,
        key: KeyRecord,
        entry: CatalogueEntry,
        ctx: RequestContext,
        started: float,
        tokens: int,
        team: TeamRecord | None = None,
        rates: TeamRates | None = None,
    ) -> None:
        """Count one request of `tokens` against the key's rate limits (and its team's): a 429
        (recorded) when over."""
        decision = await self.limits.hit(key.id, key.rpm_limit, key.tpm_limit, tokens, self.clock(), rates)
        headers = decision.headers()
        headers.pop("retry-after", None)
        if not decision.allowed:
            if ctx.response_headers:
                headers.update(ctx.response_headers)
            requests = decision.remaining_requests == 0
            error = RateLimited(
                _team_limit_message(requests, team)
                if decision.refused_by == "team" and team is not None
                else _limit_message(requests, key),
                retry_after=decision.retry_after_s,
                headers=headers,
            )
            record_request(self.ledger, key, entry.id, ctx, started, "error", error=error)
            raise error
        if ctx.response_headers:
            headers.update(ctx.response_headers)
        ctx.response_headers = headers

    async def _reserve(
        self,
        key: KeyRecord,
        entry: CatalogueEntry,
        fallbacks: Sequence[CatalogueEntry],
        demand: Demand,
        meter: AccountMeter,
        levels: tuple[SpendLevel, ...] = (),
        team: TeamRecord | None = None,
    ) -> None:
        """Hold a true upper bound of the request's cost (at the key and at every level), whichever of
        the model and its fallbacks serves, and cap its reply at what that pays for."""
        models = self._candidates.get(entry, fallbacks)
        params = demand.params
        shape = prompt_shape(params) if params is not None and entry.kind in _TOKEN_KINDS else None
        # Without the request to read (a caller that only says how big it is), its own estimate.
        prompt = demand.prompt_tokens if shape is None else shape.text_bytes + shape.fixed_tokens
        low, high = bounds(models, demand, prompt)
        sync, key_id, reservation_id = self.sync_credits, key.id, meter.reservation_id
        held = (
            NOT_LOADED
            if sync is None
            else sync.reserve_up_to_nowait(key_id, reservation_id, low, high, levels)
        )
        if held is NOT_LOADED:
            held = await self.accounts.reserve_up_to(key_id, reservation_id, low, high, levels)
        if shape is not None and held != high:
            prompt = await asyncio.to_thread(shape.counted_bound, models.counting)
            if held is None:
                low, high = bounds(models, demand, prompt)
                held = await self.accounts.reserve_up_to(key_id, reservation_id, low, high, levels)
        if held is None or held is NOT_LOADED:
            message = None
            if levels:
                spends = await self.accounts.spent(levels)
                balance = None if key.credit_limit is None else await self.accounts.balance(key_id)
                room = None if balance is None else balance.available
                message = level_refusal(
                    levels, spends, low, key, team, self.global_budget, self.clock(), room
                )
            refused = InsufficientCredits(message or _refusal_message(demand, low))
            await meter.fail(refused)
            raise refused
        meter.reserved, meter.reserved_micros = True, held
        if not demand.max_output_given and shape is not None:
            cap = reply_cap(models, demand, prompt, held)
            apply_output_cap(params, cap, models.output_limit_field)

    async def admit_cache_hit(
        self,
        key: KeyRecord,
        entry: CatalogueEntry,
        demand: Demand,
        deployment: Deployment,
        consumed: Consumption,
        ctx: RequestContext,
    ) -> int:
        """A cache hit is a request like any other to the key's rate limit (one request; no tokens,
        since no upstream is called) and to moderation, but it moves no credit: one ledger record at
        zero cost, with what the answer would have cost as its saving."""
        started = time.monotonic()
        ctx.key_id = key.id
        team = rates = None
        if key.team_id is not None:
            team = await self.teams.cached(key.team_id)
            rates = _team_rates(team)
        if key.rpm_limit is not None or key.tpm_limit is not None or rates is not None:
            await self._limit(key, entry, ctx, started, 0, team, rates)
        if self.moderator is not None and self.moderator.enabled:
            try:
                await self.moderator.check(key.id, entry.id, demand.params)
            except GatewayError as error:
                record_request(self.ledger, key, entry.id, ctx, started, "error", error=error)
                raise
        saved = charge(deployment_price(entry, deployment), consumed)
        record_request(
            self.ledger,
            key,
            entry.id,
            ctx,
            started,
            "cache_hit",
            deployment=deployment,
            consumed=consumed,
            saved=saved,
        )
        return saved

    async def _sweep(self) -> None:
        while True:
            try:
                released = await self.accounts.release_stale(time.time() - STALE_RESERVATION_SECONDS)
                if released:
                    logger.warning("released %d stale credit reservations", released)
            except Exception:
                logger.exception("stale reservation sweep failed")
            await asyncio.sleep(STALE_SWEEP_SECONDS)

    async def _keep_leases(self) -> None:
        """Renew this process's lease every fifth of it, and reclaim the reservations of processes
        whose lease ended: a killed replica's credit is free again within about 1.2 leases."""
        interval = self.lease_seconds / 5
        while True:
            try:
                now = time.time()
                await self.accounts.renew_lease(now + self.lease_seconds)
                reclaimed = await self.accounts.reclaim_expired(now)
                if reclaimed:
                    logger.warning(
                        "released %d credit reservations of a gateway whose lease ended", reclaimed
                    )
            except Exception:
                logger.exception("could not renew the reservation lease or reclaim expired ones")
            await asyncio.sleep(interval)

    async def close(self) -> None:
        for task in (self._sweeper, self._leases):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._sweeper = self._leases = None
        with contextlib.suppress(Exception):
            await self.accounts.end_lease()
        await self.ledger.close()
        if self.moderator is not None:
            await self.moderator.close()
        await self.limits.close()
        await self.accounts.close()


def _refusal_message(demand: Demand, least: int) -> str:
    if demand.max_output_given:
        return (
            "This key does not have enough credits for this request: it may cost up to "
            f"${micros_to_usd(least):.6f}. Add credits or lower max_tokens."
        )
    return (
        "This key does not have enough credits for this request: its prompt and the shortest reply"
        f" may cost up to ${micros_to_usd(least):.6f}. Add credits or shorten the prompt."
    )


def _limit_message(requests: bool, key: KeyRecord) -> str:
    if requests:
        return (
            f"Rate limit reached for this key: {key.rpm_limit} requests per minute. Please try again later."
        )
    return f"Rate limit reached for this key: {key.tpm_limit} tokens per minute. Please try again later."


def _team_rates(team: TeamRecord | None) -> TeamRates | None:
    if team is None or (team.rpm_limit is None and team.tpm_limit is None):
        return None
    return TeamRates(team.id, team.rpm_limit, team.tpm_limit)


def _team_limit_message(requests: bool, team: TeamRecord) -> str:
    if requests:
        return (
            f"Rate limit reached for this key's team '{team.name}': {team.rpm_limit} requests per minute"
            " across its keys. Please try again later."
        )
    return (
        f"Rate limit reached for this key's team '{team.name}': {team.tpm_limit} tokens per minute"
        " across its keys. Please try again later."
    )
