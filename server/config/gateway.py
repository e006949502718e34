"""GatewayConfig: the whole file, each top-level key one section."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import model_validator

from server.config.accounts import AccountsConfig
from server.config.base import FromLoader, Settings
from server.config.cache import CacheConfig
from server.config.limits import LimitsConfig
from server.config.models import ModelConfig
from server.config.providers import ProviderConfig
from server.config.responses import ResponsesConfig
from server.config.routing import RoutingConfig
from server.config.server import ObservabilityConfig, ServerConfig
from server.config.ui import UiConfig

__all__ = ["GatewayConfig"]


class GatewayConfig(Settings):
    not_in_file: ClassVar[frozenset[str]] = frozenset({"source"})

    server: ServerConfig = ServerConfig()
    # Keyed by the name models refer to; each entry's `type` picks its settings model.
    providers: dict[str, ProviderConfig] = {}
    routing: RoutingConfig = RoutingConfig()
    models: tuple[ModelConfig, ...] = ()
    accounts: AccountsConfig = AccountsConfig()
    responses: ResponsesConfig = ResponsesConfig()
    cache: CacheConfig = CacheConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    limits: LimitsConfig = LimitsConfig()
    ui: UiConfig = UiConfig()
    # Where this came from, for the start-up line: a file's path, or the embedded defaults.
    source: str = "embedded defaults"

    @model_validator(mode="before")
    @classmethod
    def _name_providers(cls, data: Any) -> Any:
        """Each provider's name is its key under `providers:`."""
        if not isinstance(data, dict) or not isinstance(data.get("providers"), dict):
            return data
        named = {
            key: {**entry, "name": FromLoader(key)}
            if isinstance(entry, dict) and "name" not in entry
            else entry
            for key, entry in data["providers"].items()
        }
        return {**data, "providers": named}

    @model_validator(mode="after")
    def _models_inherit_routing(self) -> GatewayConfig:
        """Each model's retry/breaker/timeouts/hedging: the fields it sets, over `routing:`'s."""
        defaults = self.routing.defaults
        self.__dict__["models"] = tuple(
            model.model_copy(update=model.over(defaults)) for model in self.models
        )
        return self
