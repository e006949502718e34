"""What every provider type that calls an upstream over HTTP shares: URL, key, headers, pool, timeouts
and proxy."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationInfo, field_validator, model_validator

from server.config.base import (
    FromLoader,
    HttpUrl,
    NonNegative,
    PositiveInt,
    Settings,
    load_context,
    problem,
)
from server.config.proxy import ProxySetting, check_environment_proxies
from server.providers.transport.proxies import DIRECT, parse_proxy_url

__all__ = ["HttpProviderConfig"]


class HttpProviderConfig(Settings):
    """The base of the HTTP provider types; each subclass adds `type` and its own fields and defaults."""

    # `module:Class` of the adapter serving this type (server/providers/registry.py imports it).
    adapter: ClassVar[str]
    # When the file gives no `api_key`, it is read from this variable (None: never implicitly).
    api_key_env: ClassVar[str | None] = None
    # Headers whose values are credentials, redacted from logs like the key (lower case).
    secret_headers: ClassVar[frozenset[str]] = frozenset({"authorization", "x-api-key"})
    not_in_file: ClassVar[frozenset[str]] = frozenset({"name"})

    # The key under `providers:`.
    name: str
    base_url: HttpUrl
    api_key: str | None = None
    headers: dict[str, str] = {}
    connect_timeout: NonNegative = 10.0
    # Longest silence between bytes of a reply.
    read_timeout: NonNegative = 600.0
    max_connections: PositiveInt = 256
    # Serve "<provider>/<model>" for any upstream model, beyond the ones listed under models.
    passthrough_models: bool = False
    # Whose list prices and limits (server/pricing/catalogue.yaml) its models take where the config
    # gives none; None: the provider whose API host `base_url` names, if any (a proxy names one here).
    price_catalogue: str | None = None

    @field_validator("price_catalogue")
    @classmethod
    def _listed(cls, name: str | None) -> str | None:
        from server.pricing import builtin_catalogue

        known = builtin_catalogue().provider_names
        if name is not None and name not in known:
            raise problem(f"unknown price catalogue '{name}' (known: {', '.join(known)})")
        return name

    # http://[user:pass@]host:port for every call to this provider, or `none`; unset: the
    # environment's HTTPS_PROXY / HTTP_PROXY / NO_PROXY (server/providers/transport/proxies.py).
    proxy: ProxySetting | None = None

    @model_validator(mode="before")
    @classmethod
    def _api_key_from_env(cls, data: Any, info: ValidationInfo) -> Any:
        context = load_context(info)
        if context is None or cls.api_key_env is None or not isinstance(data, dict) or "api_key" in data:
            return data
        key = context.env.get(cls.api_key_env)
        return {**data, "api_key": FromLoader(key)} if key else data

    @model_validator(mode="after")
    def _environment_proxies_usable(self, info: ValidationInfo) -> HttpProviderConfig:
        check_environment_proxies(self.proxy, load_context(info))
        return self

    def secrets(self) -> tuple[str, ...]:
        """The credentials this provider holds, for the log redactor to know by value."""
        found = [self.api_key, *(v for k, v in self.headers.items() if k.lower() in self.secret_headers)]
        if self.proxy is not None and self.proxy != DIRECT:
            found.append(parse_proxy_url(self.proxy).password)
        return tuple(secret for secret in found if secret)
