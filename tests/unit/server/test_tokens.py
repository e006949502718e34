"""The offline tokenizer: the same ids as OpenAI's, with no network, and definitions that track tiktoken's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import tiktoken.load
import tiktoken_ext.openai_public as openai_public

from server import tokens


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(path: str) -> bytes:
        raise AssertionError(f"tried to fetch {path}")

    monkeypatch.setattr(tiktoken.load, "read_file", refuse)
    tokens.encoding.cache_clear()
    yield
    tokens.encoding.cache_clear()


@pytest.mark.parametrize(
    ("name", "text", "ids"),
    [
        ("cl100k_base", "hello world", [15339, 1917]),
        ("cl100k_base", " café", [53050]),
        ("o200k_base", "hello world", [24912, 2375]),
    ],
)
def test_known_ids_encode_and_decode_without_the_network(
    no_network: None, name: str, text: str, ids: list[int]
) -> None:
    assert tokens.encoding(name).encode(text) == ids
    assert tokens.decode(ids, name) == text


def test_an_id_outside_the_vocabulary_is_named_with_its_position() -> None:
    with pytest.raises(tokens.TokenIdError) as caught:
        tokens.decode([15339, 100256, 1917])
    assert (caught.value.token, caught.value.position) == (100256, 1)
    with pytest.raises(tokens.TokenIdError):
        tokens.decode([-1])


@pytest.mark.parametrize("name", sorted(tokens.ENCODINGS))
def test_the_definitions_are_tiktokens_own(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Pattern, special tokens and the file's hash equal what the installed tiktoken would use."""
    expected: dict[str, Any] = {}

    def load(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        expected["hash"] = expected_hash
        return tokens.mergeable_ranks(name)

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", load)
    published = getattr(openai_public, name)()
    ours = tokens.ENCODINGS[name]
    assert (ours.pattern, ours.special_tokens, ours.sha256) == (
        published["pat_str"],
        published["special_tokens"],
        expected["hash"],
    )
