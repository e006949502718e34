"""The semantic tier of the response cache: single-turn requests that mean the same share an answer.

Only a single-turn request qualifies: one user message of plain text (system or developer messages
may come with it), no tools, nothing from earlier turns. Multi-turn semantic hits are where other
gateways' users get wrong answers: the same last question means something else after another
conversation. Everything but the user's text must still be identical: the text is taken out of the
request and the rest hashed (`template`), so the similarity search runs only among requests of the
same key, model, shape, instructions and parameters.

The search is exact: each template's remembered texts are a numpy matrix of unit vectors, and a
query is one matrix-vector product (cosine similarity) and an argmax, which stays in the
milliseconds for the bounded number of entries kept per template. The index lives in this process;
the answers it points to live in the cache's store (shared through Redis when configured).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from google.protobuf.message import Message

from server.response_cache.keys import cache_key
from siraya.router.v1 import chat_pb2, responses_pb2

__all__ = ["SemanticIndex", "single_turn_text", "template_key"]

_QUIET_ROLES = (chat_pb2.CHAT_ROLE_SYSTEM, chat_pb2.CHAT_ROLE_DEVELOPER)
# Templates kept at most, across keys (each with up to `max_entries` texts).
MAX_TEMPLATES = 1024


def single_turn_text(params: Message) -> str | None:
    """The user's text of a single-turn chat or Responses request; None for any other request."""
    if isinstance(params, chat_pb2.ChatCompletionParams):
        if params.tools or params.functions:
            return None
        text: str | None = None
        for message in params.messages:
            if message.role in _QUIET_ROLES:
                continue
            if message.role != chat_pb2.CHAT_ROLE_USER or text is not None or not message.HasField("text"):
                return None
            text = message.text
        return text
    if isinstance(params, responses_pb2.ResponseParams):
        if params.tools:
            return None
        source = params.WhichOneof("input")
        if source == "input_text":
            return params.input_text
        if source == "input_items" and len(params.input_items.items) == 1:
            item = params.input_items.items[0]
            if item.type == "message" and item.role == "user" and item.HasField("content_text"):
                return item.content_text
    return None


def template_key(namespace: str, shape: str, entry_id: str, params: Message) -> str:
    """The exact-cache key of the request with its user text taken out."""
    template = type(params)()
    template.CopyFrom(params)
    if isinstance(template, chat_pb2.ChatCompletionParams):
        for message in template.messages:
            if message.role == chat_pb2.CHAT_ROLE_USER:
                message.ClearField("text")
    elif isinstance(template, responses_pb2.ResponseParams):
        template.ClearField("input")
    return cache_key(namespace, "semantic/" + shape, entry_id, template)


class _Texts:
    """One template's remembered texts: unit vectors as matrix rows, and the answer key of each."""

    __slots__ = ("matrix", "keys")

    def __init__(self, dimensions: int) -> None:
        self.matrix = np.empty((0, dimensions), dtype=np.float32)
        self.keys: list[str] = []


class SemanticIndex:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._templates: OrderedDict[str, _Texts] = OrderedDict()

    def nearest(self, template: str, vector: Sequence[float], threshold: float) -> str | None:
        """The answer key of the most similar remembered text, if it is at least `threshold` alike."""
        texts = self._templates.get(template)
        query = _unit(vector)
        if texts is None or query is None or texts.matrix.shape[1] != query.shape[0] or not texts.keys:
            return None
        similarities = texts.matrix @ query
        best = int(np.argmax(similarities))
        if float(similarities[best]) < threshold:
            return None
        self._templates.move_to_end(template)
        return texts.keys[best]

    def add(self, template: str, vector: Sequence[float], answer_key: str) -> None:
        unit = _unit(vector)
        if unit is None:
            return
        texts = self._templates.get(template)
        if texts is None or texts.matrix.shape[1] != unit.shape[0]:
            texts = self._templates[template] = _Texts(unit.shape[0])
            while len(self._templates) > MAX_TEMPLATES:
                self._templates.popitem(last=False)
        if answer_key in texts.keys:
            return
        texts.matrix = np.vstack((texts.matrix, unit[np.newaxis, :]))[-self.max_entries :]
        texts.keys = (texts.keys + [answer_key])[-self.max_entries :]
        self._templates.move_to_end(template)


def _unit(vector: Sequence[float]) -> np.ndarray | None:
    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return None if array.ndim != 1 or norm == 0.0 else array / norm
