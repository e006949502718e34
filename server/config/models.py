"""The `models:` list: each public model id, its aliases, and the deployments that serve it.

A model is either the single-provider shorthand (`provider`, `upstream_model`) or a `deployments` list.
A deployment inherits `upstream_model`, `pricing`, `context_window`, `max_output_tokens` and
`supported_parameters` from its model unless it sets them; `upstream_model` defaults to the model's id.

Prices and limits the config leaves out come from the built-in catalogue (server/pricing/), field by
field, when the provider is one it lists. A model with no price at all is refused for keys with a
credit limit: `pricing: free` says explicitly that it costs nothing (a local model, a free tier).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from server.config.base import NonEmptyStr, NonNegative, PositiveInt, Settings, load_context, problem
from server.config.cache import ModelCacheConfig
from server.config.routing import ResilienceConfig

__all__ = ["MODEL_KINDS", "PRICE_FIELDS", "DeploymentConfig", "ModelConfig", "PricingConfig"]

ModelKind = Literal["chat", "embedding", "image", "video"]
MODEL_KINDS: tuple[str, ...] = get_args(ModelKind)


# The price fields of `pricing:` (USD), as the built-in catalogue names them too.
PRICE_FIELDS = (
    "input_per_million",
    "output_per_million",
    "cache_read_per_million",
    "cache_write_per_million",
    "per_image",
    "per_video_second",
    "audio_input_per_million",
    "audio_output_per_million",
    "reasoning_per_million",
)


class PricingConfig(Settings):
    input_per_million: NonNegative | None = None
    output_per_million: NonNegative | None = None
    per_image: NonNegative | None = None
    per_video_second: NonNegative | None = None
    # Prompt tokens read from / written to the provider's prompt cache; unset: the input price.
    cache_read_per_million: NonNegative | None = None
    cache_write_per_million: NonNegative | None = None
    # Audio tokens of the prompt and of the reply (gpt-4o-audio, Gemini's audio input), and the
    # reply's reasoning tokens, where the model prices them apart; unset: the input / output price.
    audio_input_per_million: NonNegative | None = None
    audio_output_per_million: NonNegative | None = None
    reasoning_per_million: NonNegative | None = None
    # Costs nothing, on purpose (`pricing: free`): the only way a model with no price serves keys
    # that have a credit limit. Never set together with a price.
    free: bool = False
    # Where the prices came from and when they were read (the built-in catalogue sets both).
    source: str | None = None
    as_of: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _free_shorthand(cls, data: Any) -> Any:
        return {"free": True} if data == "free" else data

    @model_validator(mode="after")
    def _free_has_no_price(self) -> PricingConfig:
        if self.free:
            priced = [name for name in PRICE_FIELDS if getattr(self, name) is not None]
            if priced:
                raise problem(f"a free model has no prices; remove {', '.join(priced)}", at="free")
        return self

    def prices(self) -> dict[str, float]:
        """The prices it sets, by field name."""
        return {name: value for name in PRICE_FIELDS if (value := getattr(self, name)) is not None}

    def priced_for(self, kind: str) -> bool:
        """Whether every quantity a `kind` request is billed by has a price (or the model is free)."""
        if self.free:
            return True
        if kind == "embedding":
            return self.input_per_million is not None
        if kind == "image":
            return self.per_image is not None
        if kind == "video":
            return self.per_video_second is not None
        return self.input_per_million is not None and self.output_per_million is not None


def _known_provider(name: str, info: ValidationInfo) -> str:
    context = load_context(info)
    if context is not None and name and name not in context.provider_names:
        raise problem(f"unknown provider '{name}'")
    return name


# A name under `providers:`.
ProviderName = Annotated[str, AfterValidator(_known_provider)]


class DeploymentConfig(Settings):
    """One way to serve a model: a provider, its model name, a weight and what it costs."""

    provider: ProviderName
    upstream_model: str = ""
    weight: NonNegative = 1.0
    pricing: PricingConfig = PricingConfig()
    context_window: PositiveInt | None = None
    # The most tokens one reply may hold; None: the built-in catalogue's, else what the window leaves.
    max_output_tokens: PositiveInt | None = None
    # None: whatever the provider's adapter translates.
    supported_parameters: tuple[NonEmptyStr, ...] | None = None


# What a deployment takes from its model when it does not say.
_INHERITED = ("pricing", "context_window", "max_output_tokens", "supported_parameters")


class ModelConfig(ResilienceConfig):
    id: NonEmptyStr
    # The first deployment's provider and model (the single-provider shorthand).
    provider: ProviderName = ""
    upstream_model: str = ""
    kind: ModelKind = "chat"
    owned_by: str | None = None
    context_window: PositiveInt | None = None
    max_output_tokens: PositiveInt | None = None
    pricing: PricingConfig = PricingConfig()
    created: Annotated[int, Field(ge=0)] = 0
    # Empty means one deployment: `provider` / `upstream_model`.
    deployments: tuple[DeploymentConfig, ...] = ()
    aliases: tuple[NonEmptyStr, ...] = ()
    supported_parameters: tuple[NonEmptyStr, ...] | None = None
    # Requests sharing a prompt prefix go back to the deployment that served it last, for this many
    # seconds after the last one (Anthropic's default cache lifetime, refreshed on each use), so the
    # provider's prompt cache stays warm (server/routing/affinity.py).
    prompt_cache_affinity: bool = False
    prompt_cache_affinity_ttl: Annotated[float, Field(gt=0)] = 300.0
    # Opt in to the response cache (server/response_cache/); None: only requests that ask for it.
    cache: ModelCacheConfig | None = None

    @field_validator("id", "aliases")
    @classmethod
    def _unique(cls, value: str | tuple[str, ...], info: ValidationInfo) -> str | tuple[str, ...]:
        context = load_context(info)
        if context is None:
            return value
        for public_id in (value,) if isinstance(value, str) else value:
            if public_id in context.model_ids:
                raise problem(f"duplicate model id '{public_id}'")
            context.model_ids.add(public_id)
        return value

    @model_validator(mode="after")
    def _complete(self) -> ModelConfig:
        """Derive what the file left out: the upstream model, and each deployment's inherited fields."""
        upstream_model = self.upstream_model or self.id
        if "deployments" in self.model_fields_set and not self.deployments:
            raise problem("expected a non-empty list", at="deployments")
        if not self.deployments:
            if not self.provider:
                raise problem("required", at="provider")
            self.__dict__["upstream_model"] = upstream_model
            return self
        if "provider" in self.model_fields_set:
            raise problem("give either provider or deployments, not both", at="provider")
        deployments = tuple(
            deployment.model_copy(
                update={
                    "upstream_model": deployment.upstream_model or upstream_model,
                    **{
                        name: getattr(self, name)
                        for name in _INHERITED
                        if name not in deployment.model_fields_set
                    },
                }
            )
            for deployment in self.deployments
        )
        # Derived values, set once while the object is being built and before anything can read it.
        self.__dict__.update(
            deployments=deployments,
            provider=deployments[0].provider,
            upstream_model=deployments[0].upstream_model,
        )
        return self

    @property
    def resilience(self) -> ResilienceConfig:
        return self.policy()

    def all_deployments(self) -> tuple[DeploymentConfig, ...]:
        if self.deployments:
            return self.deployments
        return (
            DeploymentConfig(
                provider=self.provider,
                upstream_model=self.upstream_model,
                pricing=self.pricing,
                context_window=self.context_window,
                max_output_tokens=self.max_output_tokens,
                supported_parameters=self.supported_parameters,
            ),
        )
