"""Build the core from config: the accounts backends, the providers, routing and the gateway."""

from __future__ import annotations

import asyncio
from pathlib import Path

from server import tokens
from server.accounts.backends import DATABASE_FILE, Accounts, open_accounts
from server.accounts.in_flight import InFlightLimit
from server.accounts.sqlite_store import SqliteStore
from server.background_responses import BackgroundResponses
from server.config import GatewayConfig
from server.gateway import Gateway
from server.providers.base import Provider
from server.providers.registry import build_provider
from server.response_cache import build_cache
from server.routing.catalogue import Catalogue
from server.routing.dispatch import build_dispatcher
from server.startup import StartupError, database_label
from server.stored_responses import ResponseState


def open_store(config: GatewayConfig) -> SqliteStore:
    return SqliteStore(Path(config.server.data_dir) / DATABASE_FILE)


async def _open_accounts(config: GatewayConfig) -> Accounts:
    """The accounts backends, or a StartupError naming the database (never its password) and why."""
    try:
        return await open_accounts(config)
    except Exception as error:
        where = database_label(
            config.accounts.database_url, str(Path(config.server.data_dir) / DATABASE_FILE)
        )
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StartupError(f"cannot open the accounts database {where}: {reason}") from error


def load_tokenizers(catalogue: Catalogue) -> None:
    """Load every vocabulary metering may count with, off the event loop and before serving.

    The first use of one costs 0.1-1 s of CPU and ~35 MB. Metering counts on the event loop (a
    cancelled request's prompt, a reply that came without usage), so a first load there would stall
    every request in flight: make bench saw its p99 at 32 connections go from 30 ms to 150-280 ms.
    """
    names = {tokens.DEFAULT_ENCODING}
    for entry in catalogue.entries():
        names.update(name for name, _ in entry.counting)
    for name in sorted(names):
        tokens.encoding(name)


async def build_gateway(config: GatewayConfig) -> Gateway:
    accounts = await _open_accounts(config)
    providers: dict[str, Provider] = {}
    try:
        accounts.metering.start()
        for name, provider in config.providers.items():
            providers[name] = build_provider(provider, config.limits)
        store = open_store(config)
        catalogue = Catalogue(config)
        dispatcher = build_dispatcher(config, providers, catalogue)
        await asyncio.to_thread(load_tokenizers, catalogue)
    except BaseException:
        # Nothing half-built may outlive a failed start: a model loading on its thread would.
        for built in providers.values():
            await built.close()
        await accounts.metering.close()
        raise
    state = ResponseState(accounts.store)
    background = BackgroundResponses(
        state,
        lease_seconds=config.responses.background_lease_seconds,
        retention_days=config.responses.retention_days,
        release=accounts.store.release,
    )
    background.start()
    return Gateway(
        catalogue,
        providers,
        accounts.keys,
        store,
        metering=accounts.metering,
        dispatcher=dispatcher,
        in_flight=InFlightLimit(config.server.max_in_flight_per_key),
        state=state,
        background=background,
        cache=build_cache(config, providers, accounts.metering),
    )
