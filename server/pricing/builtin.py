"""The built-in price catalogue (catalogue.yaml beside this module): list prices and model limits of the
well-known providers, each with the page it came from, that page's date, and (once someone has read
the figures off that page) the day they were checked.

A provider of the config is matched to a catalogue provider by the host of its `base_url` (the
embedded defaults' OpenAI, Groq, ... and the Anthropic and Gemini APIs), or by its explicit
`price_catalogue: <name>` (a proxy in front of one of them). A model is found by its upstream name
or one of its listed aliases, never by a guessed prefix: a dated snapshot can cost something else.

This module knows nothing of the config models: server/routing/catalogue.py merges a listing under
what the config says (the config wins field by field).
"""

from __future__ import annotations

import datetime
import functools
import importlib.resources
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "CATALOGUE_FILE",
    "DEFAULT_COUNTING",
    "PRICE_FIELDS",
    "ListedModel",
    "PriceCatalogue",
    "builtin_catalogue",
    "load_catalogue",
]

CATALOGUE_FILE = "catalogue.yaml"
# The price fields of an entry: the same names as the config's `pricing:`.
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

_Price = Annotated[float, Field(ge=0)]
_Tokens = Annotated[int, Field(gt=0)]
_Encoding = Literal["cl100k_base", "o200k_base"]
_Factor = Annotated[float, Field(ge=1)]

# How a prompt's tokens are bounded for a provider the catalogue does not list (a self-hosted
# server, a local model): cl100k_base with a wide margin; the byte bound caps it anyway.
DEFAULT_COUNTING: tuple[str, float] = ("cl100k_base", 1.5)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Entry(_Strict):
    aliases: tuple[str, ...] = ()
    tokenizer: _Encoding | None = None
    input_per_million: _Price | None = None
    output_per_million: _Price | None = None
    cache_read_per_million: _Price | None = None
    cache_write_per_million: _Price | None = None
    per_image: _Price | None = None
    per_video_second: _Price | None = None
    audio_input_per_million: _Price | None = None
    audio_output_per_million: _Price | None = None
    reasoning_per_million: _Price | None = None
    context_window: _Tokens | None = None
    max_output_tokens: _Tokens | None = None
    source: Annotated[str, Field(pattern=r"^https://")]
    as_of: str
    # The day the figures were read off `source` and found right; unset: never checked against it.
    verified: str | None = None
    note: str | None = None

    @field_validator("as_of", "verified", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> str | None:
        # YAML reads 2025-10-01 as a date; a string must be one too.
        if value is None or isinstance(value, datetime.date):
            return None if value is None else value.isoformat()
        return datetime.date.fromisoformat(str(value)).isoformat()

    @model_validator(mode="after")
    def _checked_after_the_page(self) -> _Entry:
        if self.verified is not None and self.verified < self.as_of:
            raise ValueError(f"verified on {self.verified} is before the page's as_of {self.as_of}")
        return self


class _Provider(_Strict):
    hosts: tuple[str, ...] = ()
    output_limit_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    tokenizer: _Encoding = "cl100k_base"
    tokenizer_factor: _Factor = DEFAULT_COUNTING[1]
    models: dict[str, _Entry]


class _File(_Strict):
    providers: dict[str, _Provider]


@dataclass(frozen=True, slots=True)
class ListedModel:
    """One model's list price and limits, as the catalogue gives them (USD; None: not given)."""

    provider: str
    model: str
    input_per_million: float | None = None
    output_per_million: float | None = None
    cache_read_per_million: float | None = None
    cache_write_per_million: float | None = None
    per_image: float | None = None
    per_video_second: float | None = None
    audio_input_per_million: float | None = None
    audio_output_per_million: float | None = None
    reasoning_per_million: float | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    source: str = ""
    as_of: str = ""
    verified: str | None = None
    note: str | None = None
    # The prompt-token bound for a reservation: (OpenAI encoding, factor over its count).
    counting: tuple[str, float] = DEFAULT_COUNTING

    def prices(self) -> dict[str, float]:
        """The prices the catalogue gives for this model, by config field name."""
        return {name: value for name in PRICE_FIELDS if (value := getattr(self, name)) is not None}


@dataclass(frozen=True, slots=True)
class _Listing:
    hosts: tuple[str, ...]
    output_limit_field: str
    counting: tuple[str, float]
    models: dict[str, ListedModel]


class PriceCatalogue:
    """The providers of a catalogue file and their models (aliases included)."""

    def __init__(self, providers: dict[str, _Listing]) -> None:
        self._providers = providers
        self._by_host = {host: name for name, listing in providers.items() for host in listing.hosts}

    @property
    def provider_names(self) -> tuple[str, ...]:
        return tuple(self._providers)

    def provider_for(self, base_url: str | None, explicit: str | None = None) -> str | None:
        """The catalogue provider whose prices apply to an upstream: `explicit` when given (it must be
        listed), else the one whose host `base_url` has; None when neither."""
        if explicit is not None:
            if explicit not in self._providers:
                raise KeyError(explicit)
            return explicit
        if not base_url:
            return None
        host = urlsplit(base_url).hostname
        return None if host is None else self._by_host.get(host.lower())

    def output_limit_field(self, provider: str | None) -> str:
        """The request field that caps a reply at `provider` (`max_tokens` where unknown)."""
        listing = None if provider is None else self._providers.get(provider)
        return "max_tokens" if listing is None else listing.output_limit_field

    def counting(self, provider: str | None, model: str) -> tuple[str, float]:
        """How to bound a prompt's tokens for `model` at `provider`: (OpenAI encoding, factor)."""
        listing = None if provider is None else self._providers.get(provider)
        if listing is None:
            return DEFAULT_COUNTING
        listed = listing.models.get(model)
        return listing.counting if listed is None else listed.counting

    def lookup(self, provider: str | None, model: str) -> ListedModel | None:
        listing = None if provider is None else self._providers.get(provider)
        return None if listing is None else listing.models.get(model)

    def models(self, provider: str) -> list[ListedModel]:
        """The provider's entries, once each (not once per alias)."""
        seen: dict[str, ListedModel] = {}
        for listed in self._providers[provider].models.values():
            seen.setdefault(listed.model, listed)
        return list(seen.values())


def load_catalogue(text: str) -> PriceCatalogue:
    """A catalogue from the text of a catalogue file; ValueError (pydantic's) naming what is wrong."""
    parsed = _File.model_validate(yaml.safe_load(text))
    providers: dict[str, _Listing] = {}
    for name, provider in parsed.providers.items():
        models: dict[str, ListedModel] = {}
        counting = (provider.tokenizer, provider.tokenizer_factor)
        for model_id, entry in provider.models.items():
            values = entry.model_dump(exclude={"aliases", "tokenizer"})
            own = counting if entry.tokenizer is None else (entry.tokenizer, provider.tokenizer_factor)
            listed = ListedModel(provider=name, model=model_id, counting=own, **values)
            for known_as in (model_id, *entry.aliases):
                if known_as in models:
                    raise ValueError(f"{name}: model {known_as!r} is listed twice")
                models[known_as] = listed
        hosts = tuple(host.lower() for host in provider.hosts)
        providers[name] = _Listing(hosts, provider.output_limit_field, counting, models)
    return PriceCatalogue(providers)


@functools.cache
def builtin_catalogue() -> PriceCatalogue:
    """The catalogue shipped in this package (read once per process)."""
    text = importlib.resources.files(__package__).joinpath(CATALOGUE_FILE).read_text(encoding="utf-8")
    return load_catalogue(text)
