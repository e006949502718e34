"""The gateway's configuration: one YAML file, or embedded defaults when there is none.

Every setting is declared once, as a field of a pydantic model: its type, default and bounds are its
validation. Unknown keys are errors with a did-you-mean, `${VAR}` resolves from the environment
(server/config/env.py), and a bad file raises one ConfigError that lists every problem with its path;
the CLI prints it one line per problem and exits 2.

Adding a setting is one line in the section's model, for example in ServerConfig:

    header_read_timeout: NonNegative = 30.0      # a number >= 0, `${VAR}` allowed, default 30
    max_connections: PositiveInt | None = None   # an optional integer >= 1

Use the bounded types from base.py (NonNegative, NonNegativeInt, PositiveInt, NonEmptyStr, HttpUrl, ...)
or `Annotated[int, Field(ge=1024)]`; a comment above the field says what it is for. A setting of one
provider type goes on that type's model in providers/ (on HttpProviderConfig for all HTTP types).

Where things are:
- base.py: the Settings base (unknown keys, `${VAR}`, strict YAML scalars) and the bounded types.
- server.py, routing.py, models.py, accounts.py, ui.py: the sections; gateway.py: the file as a whole.
- providers/: one model per provider `type:` and the tagged union of them.
- loading.py: load_config / parse_config, and the embedded defaults. errors.py: the error lines.
"""

from __future__ import annotations

from server.config.accounts import AccountsConfig, BudgetConfig, ModerationConfig, ModerationUpstreamConfig
from server.config.cache import CacheConfig, ModelCacheConfig, SemanticCacheConfig
from server.config.env import interpolate_env
from server.config.errors import ConfigError
from server.config.gateway import GatewayConfig
from server.config.limits import LimitsConfig
from server.config.loading import bundled_local_default, default_config, load_config, parse_config
from server.config.models import MODEL_KINDS, DeploymentConfig, ModelConfig, PricingConfig
from server.config.providers import (
    PROVIDER_TYPES,
    AnthropicProviderConfig,
    GeminiProviderConfig,
    HttpProviderConfig,
    LocalProviderConfig,
    OpenAIProviderConfig,
    ProviderConfig,
)
from server.config.responses import ResponsesConfig
from server.config.routing import (
    BreakerConfig,
    HedgingConfig,
    ResilienceConfig,
    RetryConfig,
    RoutingConfig,
    TimeoutConfig,
)
from server.config.server import ObservabilityConfig, ServerConfig
from server.config.ui import UiConfig

__all__ = [
    "MODEL_KINDS",
    "PROVIDER_TYPES",
    "AccountsConfig",
    "BudgetConfig",
    "AnthropicProviderConfig",
    "BreakerConfig",
    "CacheConfig",
    "ConfigError",
    "DeploymentConfig",
    "GatewayConfig",
    "GeminiProviderConfig",
    "HedgingConfig",
    "HttpProviderConfig",
    "LocalProviderConfig",
    "ModelCacheConfig",
    "ModelConfig",
    "ModerationConfig",
    "ModerationUpstreamConfig",
    "ObservabilityConfig",
    "OpenAIProviderConfig",
    "PricingConfig",
    "ProviderConfig",
    "ResponsesConfig",
    "ResilienceConfig",
    "RetryConfig",
    "RoutingConfig",
    "LimitsConfig",
    "SemanticCacheConfig",
    "ServerConfig",
    "TimeoutConfig",
    "UiConfig",
    "bundled_local_default",
    "default_config",
    "interpolate_env",
    "load_config",
    "parse_config",
]
