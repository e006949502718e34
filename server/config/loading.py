"""Reading the config: a YAML file, or the embedded defaults when there is none."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from server.config.base import LoadContext
from server.config.env import Environment
from server.config.errors import ConfigError, describe
from server.config.gateway import GatewayConfig
from server.config.models import ModelConfig, PricingConfig
from server.config.providers import LocalProviderConfig, OpenAIProviderConfig, ProviderConfig
from server.config.providers.openai import WELL_KNOWN_HOSTS

__all__ = ["bundled_local_default", "default_config", "load_config", "parse_config"]


def load_config(
    path: str | Path | None,
    environ: Environment | None = None,
    *,
    sections: Collection[str] | None = None,
    only: Mapping[str, Collection[str]] | None = None,
) -> GatewayConfig:
    """Load a YAML file, or build the embedded defaults when `path` is None.

    A relative `server.data_dir` in a file is relative to the file's directory, so every command
    given the same file finds the same data, wherever it runs from.

    With `sections`, only those top-level sections are read and the others keep their defaults: a
    command that needs only `server` and `accounts` does not need the variables the providers use.
    `only` narrows further, to named fields of named sections (the `keys` commands read
    `server.data_dir` and `accounts.database_url`); the fields left out keep their defaults.
    """
    env = os.environ if environ is None else environ
    if path is None:
        return default_config(env)
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text())
    except OSError as error:
        raise ConfigError(f"cannot read config file {file}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{file}: invalid YAML: {_yaml_problem(error)}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: the top level must be a mapping")
    if sections is not None:
        raw = {key: value for key, value in raw.items() if key in sections}
    if only is not None:
        raw = {
            section: {k: v for k, v in data.items() if k in fields} if isinstance(data, dict) else data
            for section, fields in only.items()
            if (data := raw.get(section)) is not None
        }
    config = parse_config(raw, env, source=str(file))
    data_dir = os.path.abspath(file.absolute().parent / Path(config.server.data_dir).expanduser())
    return config.model_copy(update={"server": config.server.model_copy(update={"data_dir": data_dir})})


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: what is wrong, and where."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"{error.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(error).split())


def parse_config(raw: dict[str, Any], env: Environment, source: str) -> GatewayConfig:
    """Validate a parsed file; a ConfigError lists every problem in it, one line each."""
    providers = raw.get("providers")
    context = LoadContext(
        env=env, provider_names=frozenset(providers) if isinstance(providers, dict) else frozenset()
    )
    try:
        config = GatewayConfig.model_validate(raw, context=context)
    except ValidationError as error:
        raise ConfigError(describe(error, GatewayConfig)) from None
    return config.model_copy(update={"source": source})


def default_config(env: Environment) -> GatewayConfig:
    """With no file: each well-known OpenAI-protocol service whose key is set, and the bundled local model."""
    providers: dict[str, ProviderConfig] = {}
    models: list[ModelConfig] = []
    for name, (env_var, base_url, native_responses, default_models) in WELL_KNOWN_HOSTS.items():
        key = env.get(env_var)
        if not key:
            continue
        providers[name] = OpenAIProviderConfig(
            name=name,
            base_url=base_url,
            api_key=key,
            native_responses=native_responses,
            passthrough_models=True,
        )
        for model_id, kind in default_models:
            models.append(
                ModelConfig(id=model_id, provider=name, upstream_model=model_id, kind=kind, owned_by=name)
            )
    local = bundled_local_default()
    if local is not None:
        providers[local[0].name] = local[0]
        models.append(local[1])
    return GatewayConfig(providers=providers, models=tuple(models))


def bundled_local_default() -> tuple[LocalProviderConfig, ModelConfig] | None:
    """`local/smollm2-135m-instruct` from its bundled file, when it and the local extra are installed."""
    from server.providers.local.bundled import DEFAULT_BUNDLED_MODEL, bundled_model_path, llama_cpp_installed

    if not llama_cpp_installed() or bundled_model_path(DEFAULT_BUNDLED_MODEL) is None:
        return None
    provider = LocalProviderConfig(name="local", bundled_model=DEFAULT_BUNDLED_MODEL)
    model = ModelConfig(
        id=f"local/{DEFAULT_BUNDLED_MODEL}",
        provider="local",
        upstream_model=DEFAULT_BUNDLED_MODEL,
        owned_by="local",
        context_window=provider.context_size,
        # It runs on this machine's CPU: nothing to pay, and said so (a limited key may use it).
        pricing=PricingConfig(free=True),
    )
    return provider, model
