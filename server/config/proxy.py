"""The `proxy:` setting of anything that calls out over HTTP (providers, the moderation upstream).

Unset, the environment decides (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`); `http://[user:pass@]host:port`
is that proxy for every call; `none` is no proxy at all. A value, or a variable, that cannot be used
is reported when the file is loaded, without quoting it: it may hold a password.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from server.config.base import LoadContext, problem
from server.providers.transport.proxies import DIRECT, ProxySettingError, parse_proxy_url, proxy_routes

__all__ = ["ProxySetting", "check_environment_proxies"]


def _usable(value: str) -> str:
    if value.strip().lower() == DIRECT:
        return DIRECT
    try:
        parse_proxy_url(value)
    except ProxySettingError as error:
        raise problem(f"{error} (or `none` for no proxy)") from None
    return value


ProxySetting = Annotated[str, AfterValidator(_usable)]


def check_environment_proxies(setting: str | None, context: LoadContext | None) -> None:
    """With the setting unset, the environment's proxy variables must be usable (a problem at `proxy`)."""
    if context is None or setting is not None:
        return
    try:
        proxy_routes(None, context.env)
    except ProxySettingError as error:
        raise problem(f"{error}; fix the variable, or set `proxy:` here", at="proxy") from None
