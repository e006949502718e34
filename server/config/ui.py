"""The `ui:` section: the web console the bridge serves at `/` (http_bridge/console/)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from server.config.base import PositiveInt, Settings

__all__ = ["UiConfig"]


class UiConfig(Settings):
    # The console listens where the REST API listens; false serves the API alone.
    enabled: bool = True
    # Seals the console's session cookies. Unset: a random secret kept in data_dir/console-secret
    # (one per machine). Set it, the same on every replica, when replicas share a load balancer.
    session_secret: Annotated[str, Field(min_length=32)] | None = None
    # How long a console login lasts.
    session_hours: PositiveInt = 12
    # Failed sign-ins one client address may make in a minute before it gets a 429 for the rest of it.
    login_failures_per_minute: PositiveInt = 10
