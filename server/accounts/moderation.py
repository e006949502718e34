"""Moderation before the upstream call: pattern rules and/or an OpenAI-compatible /moderations upstream.

Policies come from `accounts.moderation` in the config; each applies to its listed models and keys
(an empty list means all). A flag is a 403 `content_flagged` whose message names the categories and
quotes a short snippet of the flagged input. When the upstream cannot answer, a policy either admits
the request (fail-open) or refuses it (fail-closed, also a 403 `content_flagged`, saying so).

The upstream is called through the transport seam (server/providers/transport/): one pooled client
per policy, through the upstream's `proxy:` or the environment's proxies, each call bounded by the
upstream's `timeout`.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson
from google.protobuf.message import Message

from server.config import ConfigError, ModerationConfig
from server.errors import PermissionDenied
from server.providers.transport import Http1Client, ProxySettingError, TransportError, proxy_routes
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


# Verdict calls in flight at once, per policy.
MAX_CONNECTIONS = 64


class _Policy:
    def __init__(self, config: ModerationConfig, environ: Mapping[str, str]) -> None:
        self.config = config
        self.models = frozenset(config.models)
        self.keys = frozenset(config.keys)
        self.patterns = tuple((category, re.compile(pattern)) for category, pattern in config.patterns)
        upstream = config.upstream
        self._url = None if upstream is None else upstream.base_url + "/moderations"
        self._headers = {"Content-Type": "application/json"}
        if upstream is not None and upstream.api_key:
            self._headers["Authorization"] = f"Bearer {upstream.api_key}"
        self._timeout = upstream.timeout if upstream else 5.0
        self._client: Http1Client | None = None
        if upstream is not None:
            try:
                proxies = proxy_routes(upstream.proxy, environ)
            except ProxySettingError as error:
                raise ConfigError(f"accounts.moderation ({config.name}).upstream: {error}") from None
            self._client = Http1Client(MAX_CONNECTIONS, self._timeout, None, proxies=proxies)

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

    async def ask_upstream(self, texts: Sequence[str]) -> Flag | None:
        if self._url is None or self._client is None or not texts:
            return None
        body: dict[str, object] = {"input": list(texts)}
        if self.config.upstream is not None and self.config.upstream.model:
            body["model"] = self.config.upstream.model
        deadline = time.monotonic() + self._timeout
        try:
            async with self._client.request(
                "POST", self._url, self._headers, orjson.dumps(body), deadline=deadline, limit=MAX_REPLY_BYTES
            ) as response:
                if response.status != 200:
                    raise ModerationUnavailable(f"the moderation upstream answered {response.status}")
                payload = orjson.loads(await response.read())
        except (TransportError, TimeoutError, orjson.JSONDecodeError) as error:
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

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


class Moderator:
    """Every configured policy; `check` raises PermissionDenied(content_flagged) on a flag."""

    def __init__(
        self, policies: Sequence[ModerationConfig], environ: Mapping[str, str] | None = None
    ) -> None:
        environ = os.environ if environ is None else environ
        self._policies = tuple(_Policy(policy, environ) for policy in policies)

    @property
    def enabled(self) -> bool:
        return bool(self._policies)

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
                    flag = await policy.ask_upstream(texts)
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
        for policy in self._policies:
            await policy.close()
