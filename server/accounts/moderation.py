"""Moderation before the upstream call: pattern rules and/or an OpenAI-compatible /moderations upstream.

Policies come from `accounts.moderation` in the config; each applies to its listed models and keys
(an empty list means all). A flag is a 403 `content_flagged` whose message names the categories and
quotes a short snippet of the flagged input. When the upstream cannot answer, a policy either admits
the request (fail-open) or refuses it (fail-closed, also a 403 `content_flagged`, saying so).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
import orjson
from google.protobuf.message import Message

from server.config import ModerationConfig
from server.errors import PermissionDenied
from siraya.router.v1 import chat_pb2, embeddings_pb2, images_pb2, responses_pb2, videos_pb2

__all__ = ["Flag", "ModerationUnavailable", "Moderator", "input_texts"]

logger = logging.getLogger("siraya.accounts.moderation")
# Verdicts for a request's texts: a few KB. More than this is a broken or hostile upstream.
MAX_REPLY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Flag:
    reasons: tuple[str, ...]
    text: str
    start: int = 0


class ModerationUnavailable(Exception):
    """The moderation upstream could not give an answer."""


def input_texts(params: Message | None) -> list[str]:
    """The user-supplied text of a request, which moderation reads."""
    texts: list[str] = []
    if isinstance(params, chat_pb2.ChatCompletionParams):
        for message in params.messages:
            which = message.WhichOneof("content")
            if which == "text":
                texts.append(message.text)
            elif which == "parts":
                texts.extend(part.text.text for part in message.parts.parts if part.HasField("text"))
    elif isinstance(params, responses_pb2.ResponseParams):
        if params.HasField("instructions"):
            texts.append(params.instructions)
        which = params.WhichOneof("input")
        if which == "input_text":
            texts.append(params.input_text)
        elif which == "input_items":
            for item in params.input_items.items:
                if item.HasField("content_text"):
                    texts.append(item.content_text)
                texts.extend(part.text for part in item.content if part.HasField("text"))
    elif isinstance(params, embeddings_pb2.EmbeddingParams):
        which = params.WhichOneof("input")
        if which == "text":
            texts.append(params.text)
        elif which == "texts":
            texts.extend(params.texts.values)
    elif isinstance(params, (images_pb2.ImageParams, videos_pb2.VideoParams)):
        texts.append(params.prompt)
    return [text for text in texts if text]


def snippet(flag: Flag, limit: int) -> str:
    """At most `limit` characters of the flagged text, around where the flag was found."""
    text = flag.text
    if len(text) <= limit:
        return text
    start = max(0, min(flag.start - limit // 4, len(text) - limit))
    cut = text[start : start + limit]
    return ("…" if start else "") + cut + ("…" if start + limit < len(text) else "")


class _Policy:
    def __init__(self, config: ModerationConfig) -> None:
        self.config = config
        self.models = frozenset(config.models)
        self.keys = frozenset(config.keys)
        self.patterns = tuple((category, re.compile(pattern)) for category, pattern in config.patterns)
        upstream = config.upstream
        self._url = None if upstream is None else upstream.base_url + "/moderations"
        self._headers = {"Content-Type": "application/json"}
        if upstream is not None and upstream.api_key:
            self._headers["Authorization"] = f"Bearer {upstream.api_key}"
        self._timeout = aiohttp.ClientTimeout(total=upstream.timeout if upstream else 5.0)

    def applies(self, key_id: str, model: str) -> bool:
        return (not self.models or model in self.models) and (not self.keys or key_id in self.keys)

    def match_patterns(self, texts: Sequence[str]) -> Flag | None:
        for text in texts:
            reasons: list[str] = []
            start = 0
            for category, pattern in self.patterns:
                found = pattern.search(text)
                if found is not None:
                    if not reasons:
                        start = found.start()
                    reasons.append(category)
            if reasons:
                return Flag(tuple(reasons), text, start)
        return None

    async def ask_upstream(self, session: aiohttp.ClientSession, texts: Sequence[str]) -> Flag | None:
        if self._url is None or not texts:
            return None
        body: dict[str, object] = {"input": list(texts)}
        if self.config.upstream is not None and self.config.upstream.model:
            body["model"] = self.config.upstream.model
        try:
            async with session.post(
                self._url, data=orjson.dumps(body), headers=self._headers, timeout=self._timeout
            ) as response:
                if response.status != 200:
                    raise ModerationUnavailable(f"the moderation upstream answered {response.status}")
                payload = orjson.loads(await _read_capped(response))
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as error:
            raise ModerationUnavailable(type(error).__name__) from None
        results = payload.get("results") if isinstance(payload, dict) else None
        if not isinstance(results, list):
            raise ModerationUnavailable("the moderation upstream gave no results")
        for text, result in zip(texts, results, strict=False):
            if isinstance(result, dict) and result.get("flagged") is True:
                categories = result.get("categories") or {}
                reasons = tuple(sorted(name for name, hit in categories.items() if hit is True)) or (
                    "flagged",
                )
                return Flag(reasons, text)
        return None


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """The verdicts, refused past MAX_REPLY_BYTES: an upstream must not make us hold an unbounded body."""
    if (response.content_length or 0) > MAX_REPLY_BYTES:
        raise ModerationUnavailable("the moderation upstream's reply is too large")
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > MAX_REPLY_BYTES:
            raise ModerationUnavailable("the moderation upstream's reply is too large")
    return bytes(body)


class Moderator:
    """Every configured policy; `check` raises PermissionDenied(content_flagged) on a flag."""

    def __init__(self, policies: Sequence[ModerationConfig]) -> None:
        self._policies = tuple(_Policy(policy) for policy in policies)
        self._session: aiohttp.ClientSession | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._policies)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def check(self, key_id: str, model: str, params: Message | None) -> None:
        policies = [policy for policy in self._policies if policy.applies(key_id, model)]
        if not policies:
            return
        texts = input_texts(params)
        if not texts:
            return
        for policy in policies:
            flag = policy.match_patterns(texts)
            if flag is None:
                try:
                    flag = await policy.ask_upstream(self._client(), texts)
                except ModerationUnavailable as error:
                    if policy.config.fail_open:
                        logger.warning(
                            "moderation policy %s unavailable (%s); admitting", policy.config.name, error
                        )
                        continue
                    raise PermissionDenied(
                        "Your request could not be moderated and this gateway refuses unmoderated requests.",
                        code="content_flagged",
                    ) from None
            if flag is not None:
                quoted = snippet(flag, policy.config.snippet_chars)
                raise PermissionDenied(
                    f'Your request was flagged by moderation ({", ".join(flag.reasons)}): "{quoted}"',
                    code="content_flagged",
                )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
