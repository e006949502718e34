"""The `models:` and `routing:` config: deployments, aliases, per-model overrides, and the catalogue
(and `GET /v1/models` body) built from them."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from server.config import ConfigError, load_config
from server.routing.catalogue import Catalogue, entry_to_proto
from siraya.router.codec.models import encode_model

CONFIG = """
providers:
  openai: {base_url: "https://api.openai.com/v1"}
  azure: {base_url: "https://example.openai.azure.com/v1"}
  claude: {type: anthropic, base_url: "https://api.anthropic.com"}
routing:
  retry: {max_attempts: 3, base_delay: 0.1}
  timeouts: {first_token: 20, total: 300}
models:
  - id: gpt-4o
    aliases: [gpt-4o-latest, flagship]
    pricing: {input_per_million: 2.5, output_per_million: 10}
    context_window: 128000
    timeouts: {first_token: 5}
    hedging: {enabled: true, delay: 1.5}
    deployments:
      - {provider: openai, upstream_model: gpt-4o, weight: 3}
      - provider: azure
        upstream_model: gpt-4o-2024-08-06
        pricing: {input_per_million: 2.0, output_per_million: 8}
        supported_parameters: [temperature, max_tokens]
  - {id: mini, provider: openai, upstream_model: gpt-4o-mini}
  - {id: sonnet, provider: claude, upstream_model: claude-sonnet-4}
"""


def load(tmp_path: Path, text: str = CONFIG) -> Catalogue:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return Catalogue(load_config(path, {}))


def test_deployments_inherit_the_model_fields_they_do_not_set(tmp_path: Path) -> None:
    entry = load(tmp_path).get("gpt-4o")
    first, second = entry.deployments
    assert (first.key, first.weight, first.context_window) == ("openai/gpt-4o", 3, 128000)
    assert (first.pricing.input_per_million, second.pricing.input_per_million) == (2.5, 2.0)
    assert second.supported_parameters == {"temperature", "max_tokens"}
    assert "seed" in first.supported_parameters, "an OpenAI-protocol deployment passes every field"
    assert entry.pricing.output_per_million == 10 and entry.context_window == 128000


def test_model_overrides_merge_over_the_gateway_defaults_field_by_field(tmp_path: Path) -> None:
    catalogue = load(tmp_path)
    flagship = catalogue.get("gpt-4o").resilience
    assert (flagship.retry.max_attempts, flagship.retry.base_delay) == (3, 0.1)
    assert (flagship.timeouts.first_token, flagship.timeouts.total) == (5, 300)
    assert (flagship.hedging.enabled, flagship.hedging.delay) == (True, 1.5)
    mini = catalogue.get("mini").resilience
    assert (mini.timeouts.first_token, mini.hedging.enabled) == (20, False)


def test_aliases_resolve_to_their_model_and_the_shorthand_is_one_deployment(tmp_path: Path) -> None:
    catalogue = load(tmp_path)
    assert catalogue.get("flagship") is catalogue.get("gpt-4o")
    assert [e.id for e in catalogue.entries()] == ["gpt-4o", "mini", "sonnet"]
    (only,) = catalogue.get("mini").deployments
    assert (only.provider, only.upstream_model, only.weight) == ("openai", "gpt-4o-mini", 1.0)
    sonnet = catalogue.get("sonnet").deployments[0].supported_parameters
    assert "tools" in sonnet and "logprobs" not in sonnet, "a native adapter lists what it translates"


def test_the_model_list_carries_the_catalogue_fields(tmp_path: Path) -> None:
    body = encode_model(entry_to_proto(load(tmp_path).get("gpt-4o")))
    assert body["type"] == "chat" and body["context_window"] == 128000
    # The config's prices, and the cached-input price it leaves out from the built-in catalogue.
    assert body["pricing"] == {
        "input_per_million": 2.5,
        "output_per_million": 10,
        "cache_read_per_million": 1.25,
    }
    assert "temperature" in body["supported_parameters"] and "image_url" not in body["supported_parameters"]
    assert orjson.loads(orjson.dumps(body))["id"] == "gpt-4o"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            ("- {provider: openai, upstream_model: gpt-4o, weight: 3}", "- {provider: nope}"),
            "models[0].deployments[0].provider: unknown provider 'nope'",
        ),
        (("aliases: [gpt-4o-latest, flagship]", "aliases: [mini]"), "duplicate model id 'mini'"),
        (
            (
                "  - {id: mini, provider: openai,",
                "  - {id: mini, deployments: [{provider: openai}], provider: openai,",
            ),
            "models[1].provider: give either provider or deployments",
        ),
        (
            ("timeouts: {first_token: 5}", "timeouts: {first_tokens: 5}"),
            "models[0].timeouts.first_tokens: unknown field",
        ),
        (
            ("retry: {max_attempts: 3,", "retry: {max_attempts: 0,"),
            "routing.retry.max_attempts: must be >= 1",
        ),
        (("routing:\n", "routing:\n  breaker: {failure_rate: 2}\n"), "routing.breaker.failure_rate"),
        (("routing:\n", "routing:\n  redis_url: http://x\n"), "routing.redis_url"),
        (("weight: 3", "weight: -1"), "models[0].deployments[0].weight: must be >= 0"),
    ],
)
def test_bad_routing_config_names_the_field(tmp_path: Path, change: tuple[str, str], named: str) -> None:
    assert change[0] in CONFIG
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, CONFIG.replace(change[0], change[1], 1))
    assert named in str(caught.value)
