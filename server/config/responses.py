"""The `responses:` section: how long stored responses are kept, and how background ones are watched."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from server.config.base import Settings

__all__ = ["ResponsesConfig"]


class ResponsesConfig(Settings):
    # Stored responses older than this many days are deleted (OpenAI keeps them 30 days);
    # 0 keeps them forever.
    retention_days: Annotated[float, Field(ge=0)] = 30.0
    # A running background response's process renews its lease this often; a response whose lease
    # is three periods old belongs to a process that died, and is marked failed.
    background_lease_seconds: Annotated[float, Field(ge=0.05)] = 10.0
