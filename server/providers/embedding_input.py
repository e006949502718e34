"""The texts of an embeddings request, for upstreams that embed text only.

OpenAI's embeddings endpoint also takes token ids (one list, or a list of lists), and clients send
them by default: LangChain's OpenAIEmbeddings tokenizes with cl100k_base before it sends. Such ids
decode to exactly the text they were made from (server/tokens.py, offline), so a text-only upstream
can serve them faithfully instead of refusing them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from server import tokens
from server.errors import InvalidRequest
from siraya.router.v1 import embeddings_pb2

__all__ = ["embedding_texts", "load_tokenizer_for"]

_TOKEN_INPUTS = ("tokens", "token_lists")


async def load_tokenizer_for(params: embeddings_pb2.EmbeddingParams) -> None:
    """Load the tokenizer off the event loop when `params` will need it (its first load takes ~1 s)."""
    if params.WhichOneof("input") in _TOKEN_INPUTS:
        await asyncio.to_thread(tokens.encoding)


def embedding_texts(params: embeddings_pb2.EmbeddingParams) -> list[str]:
    """One text per input: texts as they are, token ids decoded (cl100k_base, OpenAI's embedding models')."""
    kind = params.WhichOneof("input")
    if kind == "text":
        texts = [params.text]
    elif kind == "texts":
        texts = list(params.texts.values)
    elif kind == "tokens":
        texts = [_decoded(params.tokens.values, "input")]
    elif kind == "token_lists":
        texts = [_decoded(ids.values, f"input[{i}]") for i, ids in enumerate(params.token_lists.values)]
    else:
        raise InvalidRequest(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    if not texts:
        raise InvalidRequest("'input' must not be empty.", param="input")
    return texts


def _decoded(ids: Iterable[int], where: str) -> str:
    try:
        return tokens.decode(ids)
    except tokens.TokenIdError as error:
        raise InvalidRequest(
            f"{where}[{error.position}] is {error.token}, which is not a {tokens.DEFAULT_ENCODING} token id.",
            param="input",
            code="invalid_value",
        ) from None
