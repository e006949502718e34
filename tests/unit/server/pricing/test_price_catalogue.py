"""The built-in price catalogue: the shipped file is complete, and the config completes from it field
by field; what stays unpriced is named, and `pricing: free` is the only way to be free."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from server.config import (
    ConfigError,
    GatewayConfig,
    ModelConfig,
    OpenAIProviderConfig,
    PricingConfig,
    default_config,
    parse_config,
)
from server.config.providers.openai import WELL_KNOWN_HOSTS
from server.pricing import builtin_catalogue, load_catalogue
from server.routing.catalogue import Catalogue, entry_to_proto
from siraya.router.codec.models import encode_model

CHAT_KINDS = ("chat",)


def test_every_entry_of_the_shipped_file_names_its_source_and_date_and_prices_its_kind() -> None:
    catalogue = builtin_catalogue()
    assert set(catalogue.provider_names) == {
        "openai",
        "anthropic",
        "gemini",
        "groq",
        "mistral",
        "deepseek",
        "together",
        "xai",
    }
    for provider in catalogue.provider_names:
        listed = catalogue.models(provider)
        assert listed, provider
        for model in listed:
            assert model.source.startswith("https://"), model
            assert datetime.date.fromisoformat(model.as_of) <= datetime.date.today()
            prices = model.prices()
            assert prices, model
            if "input_per_million" in prices and "output_per_million" not in prices:
                assert "embed" in model.model, model  # only embeddings bill input alone
            if model.max_output_tokens is not None and model.context_window is not None:
                assert model.max_output_tokens <= model.context_window, model
            if model.verified is None:
                assert model.note is not None and model.note.startswith("unverified"), model
            else:
                assert datetime.date.fromisoformat(model.verified) <= datetime.date.today(), model


def test_the_embedded_defaults_serve_no_unpriced_model() -> None:
    env = {variable: "sk-test" for variable, *_ in WELL_KNOWN_HOSTS.values()}
    config = default_config(env)
    catalogue = Catalogue(config)
    served = catalogue.entries()
    assert len(served) >= 9
    assert [(entry.id, entry.unpriced) for entry in served if entry.unpriced] == []
    gpt4o = catalogue.get("gpt-4o")
    assert gpt4o.pricing.input_per_million == 2.5
    assert gpt4o.max_output_tokens == 16384
    assert gpt4o.output_limit_field == "max_completion_tokens"
    assert catalogue.get("deepseek-chat").output_limit_field == "max_tokens"


def test_providers_are_recognised_by_host_or_named_explicitly() -> None:
    catalogue = builtin_catalogue()
    assert catalogue.provider_for("https://api.groq.com/openai/v1") == "groq"
    assert catalogue.provider_for("https://API.Mistral.ai/v1") == "mistral"
    assert catalogue.provider_for("http://127.0.0.1:9999/v1") is None
    assert catalogue.provider_for("http://127.0.0.1:9999/v1", "anthropic") == "anthropic"
    with pytest.raises(KeyError):
        catalogue.provider_for(None, "nobody")


def _config(models: list[dict[str, Any]], **provider: Any) -> GatewayConfig:
    raw = {
        "providers": {"up": {"type": "openai", "base_url": "http://127.0.0.1:1/v1", **provider}},
        "models": models,
    }
    return parse_config(raw, {}, source="test")


def test_the_config_wins_field_by_field_and_the_rest_comes_from_the_catalogue() -> None:
    config = _config(
        [
            {"id": "listed", "provider": "up", "upstream_model": "gpt-4o-mini"},
            {
                "id": "discounted",
                "provider": "up",
                "upstream_model": "gpt-4o-mini",
                "pricing": {"input_per_million": 0.1, "source": "https://example.com/contract"},
                "max_output_tokens": 100,
            },
        ],
        price_catalogue="openai",
    )
    catalogue = Catalogue(config)
    listed = catalogue.get("listed")
    assert listed.unpriced == ()
    assert listed.pricing.prices() == {
        "input_per_million": 0.15,
        "output_per_million": 0.6,
        "cache_read_per_million": 0.075,
    }
    assert (listed.pricing.source, listed.pricing.as_of) == ("https://openai.com/api/pricing/", "2025-10-01")
    assert listed.context_window == 128000
    discounted = catalogue.get("discounted")
    assert discounted.pricing.input_per_million == 0.1
    assert discounted.pricing.output_per_million == 0.6
    assert discounted.pricing.source == "https://example.com/contract"
    assert discounted.max_output_tokens == 100
    assert discounted.deployments[0].pricing == discounted.pricing


def test_a_deployment_overrides_its_model_and_each_deployment_is_priced_on_its_own() -> None:
    config = _config(
        [
            {
                "id": "mixed",
                "upstream_model": "gpt-4o",
                "deployments": [
                    {"provider": "up"},
                    {"provider": "up", "upstream_model": "unknown-model"},
                    {
                        "provider": "up",
                        "upstream_model": "other",
                        "pricing": {"input_per_million": 1, "output_per_million": 2},
                    },
                ],
            }
        ],
        price_catalogue="openai",
    )
    entry = Catalogue(config).get("mixed")
    prices = [d.pricing.input_per_million for d in entry.deployments]
    assert prices == [2.5, None, 1]
    assert entry.unpriced == ("up/unknown-model",)
    assert entry.max_output_tokens is None  # one deployment's limit is unknown


def test_a_model_without_any_price_is_unpriced_unless_it_says_free() -> None:
    config = _config(
        [
            {"id": "nothing", "provider": "up"},
            {"id": "half", "provider": "up", "pricing": {"input_per_million": 1}},
            {"id": "embedder", "provider": "up", "kind": "embedding", "pricing": {"input_per_million": 1}},
            {"id": "gift", "provider": "up", "pricing": "free"},
            {"id": "gift-too", "provider": "up", "pricing": {"free": True}},
            {"id": "pictures", "provider": "up", "kind": "image", "pricing": {"input_per_million": 1}},
        ]
    )
    catalogue = Catalogue(config)
    assert catalogue.get("nothing").unpriced == ("up/nothing",)
    assert catalogue.get("half").unpriced == ("up/half",)  # output would be silently free
    assert catalogue.get("embedder").unpriced == ()
    assert catalogue.get("gift").unpriced == ()
    assert catalogue.get("gift-too").unpriced == ()
    assert catalogue.get("pictures").unpriced == ("up/pictures",)


def test_free_with_a_price_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="free model has no prices; remove input_per_million"):
        _config([{"id": "m", "provider": "up", "pricing": {"free": True, "input_per_million": 1}}])


def test_an_unknown_price_catalogue_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown price catalogue 'nobody'"):
        _config([{"id": "m", "provider": "up", "pricing": "free"}], price_catalogue="nobody")


def test_passthrough_models_take_listed_prices_and_others_stay_unpriced() -> None:
    config = GatewayConfig(
        providers={
            "groq": OpenAIProviderConfig(
                name="groq", base_url="https://api.groq.com/openai/v1", passthrough_models=True
            )
        },
        models=(ModelConfig(id="m", provider="groq", pricing=PricingConfig(free=True)),),
    )
    catalogue = Catalogue(config)
    listed = catalogue.get("groq/llama-3.3-70b-versatile")
    assert listed.unpriced == ()
    assert listed.pricing.output_per_million == 0.79
    assert listed.max_output_tokens == 32768
    assert catalogue.get("groq/some-new-model").unpriced == ("groq/some-new-model",)


def test_models_show_their_prices_source_and_limits() -> None:
    config = _config(
        [{"id": "listed", "provider": "up", "upstream_model": "gpt-4o"}], price_catalogue="openai"
    )
    shown = encode_model(entry_to_proto(Catalogue(config).get("listed")))
    assert shown["context_window"] == 128000
    assert shown["max_output_tokens"] == 16384
    assert shown["pricing"] == {
        "input_per_million": 2.5,
        "output_per_million": 10.0,
        "cache_read_per_million": 1.25,
        "source": "https://openai.com/api/pricing/",
        "as_of": "2025-10-01",
    }
    free = encode_model(
        entry_to_proto(Catalogue(_config([{"id": "f", "provider": "up", "pricing": "free"}])).get("f"))
    )
    assert free["pricing"] == {"free": True}


def _file(models: str) -> str:
    return "providers: {p: {hosts: [p.test], models: {" + models + "}}}"


def test_a_catalogue_file_is_checked() -> None:
    fields = "input_per_million: 1, source: 'https://x.test/', as_of: 2025-01-01"
    with pytest.raises(ValidationError, match="input_per_millon"):
        load_catalogue(_file("m: {input_per_millon: 1, source: 'https://x.test/', as_of: 2025-01-01}"))
    with pytest.raises(ValidationError, match="source"):
        load_catalogue(_file("m: {input_per_million: 1, as_of: 2025-01-01}"))
    with pytest.raises(ValidationError, match="as_of"):
        load_catalogue(_file("m: {input_per_million: 1, source: 'https://x.test/', as_of: soon}"))
    with pytest.raises(ValueError, match="listed twice"):
        load_catalogue(_file(f"m: {{{fields}}}, n: {{aliases: [m], {fields}}}"))
    loaded = load_catalogue(_file(f"m: {{{fields}}}"))
    assert loaded.lookup("p", "m") is not None
    assert loaded.provider_for("https://p.test/v1") == "p"


def test_an_entry_says_when_its_figures_were_checked_against_its_source() -> None:
    fields = "input_per_million: 1, source: 'https://x.test/', as_of: 2026-02-05"
    loaded = load_catalogue(_file(f"checked: {{{fields}, verified: 2026-12-06}}, unchecked: {{{fields}}}"))
    checked, unchecked = loaded.lookup("p", "checked"), loaded.lookup("p", "unchecked")
    assert checked is not None and checked.verified == "2026-12-06"
    assert unchecked is not None and unchecked.verified is None
    with pytest.raises(ValidationError, match="verified"):
        load_catalogue(_file(f"m: {{{fields}, verified: lately}}"))
    with pytest.raises(ValidationError, match="verified on 2026-01-01 is before the page's as_of 2026-02-05"):
        load_catalogue(_file(f"m: {{{fields}, verified: 2026-01-01}}"))
