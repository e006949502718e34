"""Provider adapters by config type: each provider type's settings model names its adapter.

A new wire protocol is an adapter module plus its settings model in server/config/providers/.
"""

from __future__ import annotations

import importlib
from typing import cast

from server.config import LimitsConfig, ProviderConfig
from server.providers.base import Provider


def build_provider(config: ProviderConfig, limits: LimitsConfig | None = None) -> Provider:
    """The adapter named by the config's type, imported on first use (adapters pull in their codecs);
    `limits` are the gateway's budgets (media, reply sizes)."""
    module, _, name = type(config).adapter.partition(":")
    return cast(Provider, getattr(importlib.import_module(module), name)(config, limits or LimitsConfig()))
