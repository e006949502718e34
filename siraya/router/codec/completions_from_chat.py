"""The chat replies to a legacy completions request, as OpenAI's `text_completion` objects. Pure: no I/O.

Each prompt of the request was one chat request (completions_to_chat.py); its choices become the
choices `prompt_index * n` onward, as OpenAI numbers them. A choice's text is the chat answer's
content (its refusal when it has no content), after the prompt when the request asked for `echo`.
Chat's finish reasons map onto completions' three: `length` and `content_filter` are kept, every
other (a natural stop, or a tool call no completions request can ask for) is `stop`. Chat log
probabilities become the legacy arrays: `tokens`, `token_logprobs`, `top_logprobs` (one object per
position, most likely first) and `text_offset`, counted in characters from the start of the prompt,
as OpenAI counts them. The usage of several prompts is their sum.
"""

from __future__ import annotations

from collections.abc import Iterable

from siraya.router.v1 import chat_pb2, common_pb2, completions_pb2

__all__ = [
    "CompletionAssembler",
    "CompletionStreamTranslator",
    "add_usage",
    "completion_id",
    "finish_reason",
]

_KEPT_REASONS = frozenset({"stop", "length", "content_filter"})
_PROMPT_DETAILS = ("cached_tokens", "audio_tokens", "cache_creation_tokens")
_COMPLETION_DETAILS = (
    "reasoning_tokens",
    "audio_tokens",
    "accepted_prediction_tokens",
    "rejected_prediction_tokens",
)


def completion_id(chat_id: str, fallback: str) -> str:
    """`cmpl-...` from the chat reply's own id (`chatcmpl-abc` is `cmpl-abc`), else from `fallback`."""
    suffix = chat_id.removeprefix("chatcmpl-") or fallback
    return "cmpl-" + suffix


def finish_reason(chat_reason: str) -> str:
    return chat_reason if chat_reason in _KEPT_REASONS else "stop"


def add_usage(total: common_pb2.Usage, usage: common_pb2.Usage) -> None:
    """Add `usage` into `total`, details and cost included when either has them."""
    total.prompt_tokens += usage.prompt_tokens
    total.completion_tokens += usage.completion_tokens
    total.total_tokens += usage.total_tokens
    if usage.HasField("prompt_tokens_details"):
        _add_counts(total.prompt_tokens_details, usage.prompt_tokens_details, _PROMPT_DETAILS)
    if usage.HasField("completion_tokens_details"):
        _add_counts(total.completion_tokens_details, usage.completion_tokens_details, _COMPLETION_DETAILS)
    if usage.HasField("cost"):
        total.cost = total.cost + usage.cost


def _add_counts(total: object, counts: object, names: tuple[str, ...]) -> None:
    for name in names:
        if counts.HasField(name):  # type: ignore[attr-defined]
            setattr(total, name, getattr(total, name) + getattr(counts, name))


def _add_logprobs(
    target: completions_pb2.CompletionLogprobs, tokens: Iterable[chat_pb2.TokenLogprob], offset: int
) -> None:
    """Append chat's per-token log probabilities, the first token at text offset `offset`."""
    for token in tokens:
        target.tokens.append(token.token)
        target.token_logprobs.append(token.logprob)
        target.top_logprobs.add().entries.extend(
            completions_pb2.CompletionTopLogprob(token=top.token, logprob=top.logprob)
            for top in token.top_logprobs
        )
        target.text_offset.append(offset)
        offset += len(token.token)


def _answer_text(content: str, refusal: str) -> str:
    return content or refusal


class CompletionAssembler:
    """Builds the unary completion, one chat completion (one prompt) at a time."""

    def __init__(self, n: int, echo: bool, fallback_id: str) -> None:
        self._n = n
        self._echo = echo
        self._fallback_id = fallback_id
        self.completion = completions_pb2.Completion(object="text_completion")

    def add(self, prompt_index: int, prompt: str, chat: chat_pb2.ChatCompletion) -> None:
        completion = self.completion
        if prompt_index == 0:
            completion.id = completion_id(chat.id, self._fallback_id)
            completion.created = chat.created
            completion.model = chat.model
            if chat.HasField("system_fingerprint"):
                completion.system_fingerprint = chat.system_fingerprint
            if chat.HasField("provider"):
                completion.provider = chat.provider
        prefix = prompt if self._echo else ""
        for choice in chat.choices:
            message = choice.message
            out = completion.choices.add(
                index=prompt_index * self._n + choice.index,
                text=prefix + _answer_text(message.content, message.refusal),
                finish_reason=finish_reason(choice.finish_reason),
            )
            if choice.HasField("logprobs"):
                out.logprobs.SetInParent()
                _add_logprobs(out.logprobs, choice.logprobs.content, len(prompt))
        if chat.HasField("usage"):
            add_usage(completion.usage, chat.usage)


class CompletionStreamTranslator:
    """Turns the chat chunks of each prompt, in turn, into `text_completion` chunks with one id.

    With `echo`, a choice's first chunk starts with the prompt. A chunk that would say nothing (the
    role-only opening delta, a delta of reasoning) is left out. Usage chunks are summed, not sent:
    `usage_chunk` gives the one usage chunk at the end.
    """

    def __init__(self, n: int, echo: bool, fallback_id: str) -> None:
        self._n = n
        self._echo = echo
        self._fallback_id = fallback_id
        self._id = ""
        self._created = 0
        self._model = ""
        self._provider: str | None = None
        # The next text offset of each choice that has started.
        self._offsets: dict[int, int] = {}
        self._usage: common_pb2.Usage | None = None

    @property
    def started(self) -> bool:
        return bool(self._id)

    def feed(
        self, prompt_index: int, prompt: str, chunk: chat_pb2.ChatCompletionChunk
    ) -> completions_pb2.Completion | None:
        if not self._id:
            self._id = completion_id(chunk.id, self._fallback_id)
            self._created = chunk.created
            self._model = chunk.model
            self._provider = chunk.provider if chunk.HasField("provider") else None
        if chunk.HasField("usage"):
            if self._usage is None:
                self._usage = common_pb2.Usage()
            add_usage(self._usage, chunk.usage)
        out = self._chunk()
        for choice in chunk.choices:
            index = prompt_index * self._n + choice.index
            delta = choice.delta
            generated = _answer_text(delta.content, delta.refusal)
            offset = self._offsets.get(index)
            text = generated
            if offset is None:
                offset = len(prompt)
                if self._echo:
                    text = prompt + generated
            reason = finish_reason(choice.finish_reason) if choice.HasField("finish_reason") else None
            has_logprobs = choice.HasField("logprobs") and len(choice.logprobs.content) > 0
            if not text and reason is None and not has_logprobs:
                continue
            made = out.choices.add(index=index, text=text)
            if reason is not None:
                made.finish_reason = reason
            if has_logprobs:
                made.logprobs.SetInParent()
                _add_logprobs(made.logprobs, choice.logprobs.content, offset)
            self._offsets[index] = offset + len(generated)
        return out if out.choices else None

    def usage_chunk(self) -> completions_pb2.Completion | None:
        """The usage of every prompt's stream, as one last chunk with no choices; None if none came."""
        if self._usage is None:
            return None
        out = self._chunk()
        out.usage.CopyFrom(self._usage)
        return out

    def _chunk(self) -> completions_pb2.Completion:
        chunk = completions_pb2.Completion(
            id=self._id, object="text_completion", created=self._created, model=self._model
        )
        if self._provider is not None:
            chunk.provider = self._provider
        return chunk
