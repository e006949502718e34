"""One loaded GGUF chat model and its token loop. Runs only on the inference worker thread.

The prompt is the model's own chat template (the GGUF's `tokenizer.chat_template`, rendered by
llama-cpp-python's `Jinja2ChatFormatter`, as `Llama.create_chat_completion` does), tokenized
once, so `prompt_tokens` is exact. Generation goes token by token through `Llama.generate`, which
makes `completion_tokens` exact too (the end-of-turn token is not counted, as llama.cpp does not)
and lets a cancelled request stop between two tokens.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.errors import InvalidRequest
from server.providers.local.request import Generation, Turn
from server.providers.local.text import StopScanner

__all__ = ["GenerationResult", "LlamaEngine", "ModelLoadError"]


class ModelLoadError(RuntimeError):
    """The GGUF file could not be loaded as a chat model."""


@dataclass(frozen=True, slots=True)
class GenerationResult:
    # "stop" (end of turn or a stop sequence), "length" (max_tokens or a full context) or "cancelled".
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


@ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
def _no_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """llama.cpp's own log lines (model load details, timings): not ours to print."""


def _quiet_llama(llama_cpp: Any, model_path: Path, context_size: int, threads: int | None) -> Any:
    """Load the model without a word on stdout or stderr.

    llama-cpp-python's own quiet mode (`verbose=False`) points file descriptors 1 and 2 at /dev/null
    while it loads and then back; on a thread, while the event loop opens and closes descriptors,
    the way back can land on /dev/null and the process loses its stdout and stderr for good (the
    banner and every log line after it). So the C library logs to nothing, and the wrapper's own
    Python prints of a verbose load (all to sys.stderr) go to a buffer; no descriptor is touched.
    """
    llama_cpp.llama_log_set(_no_log, ctypes.c_void_p(0))
    with contextlib.redirect_stderr(io.StringIO()):  # the wrapper prints its verbose lines to stderr
        llama = llama_cpp.Llama(
            model_path=str(model_path), n_ctx=context_size, n_threads=threads, verbose=True
        )
    llama.verbose = False
    return llama


class LlamaEngine:
    """Not thread-safe: the worker thread is its only caller."""

    def __init__(self, model_path: Path, *, context_size: int, threads: int | None = None) -> None:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        try:
            self._llama = _quiet_llama(llama_cpp, model_path, context_size, threads)
        except (ValueError, RuntimeError) as error:
            raise ModelLoadError(f"cannot load {model_path.name}: {error}") from None
        template = self._llama.metadata.get("tokenizer.chat_template")
        if not template:
            self._llama.close()
            raise ModelLoadError(f"{model_path.name} has no chat template, so it is not a chat model")
        eos, bos = self._llama.token_eos(), self._llama.token_bos()
        self._formatter = Jinja2ChatFormatter(
            template=template, eos_token=self._token_text(eos), bos_token=self._token_text(bos)
        )
        self._vocab = llama_cpp.llama_model_get_vocab(self._llama.model)
        self._is_end_of_turn: Callable[[Any, int], bool] = llama_cpp.llama_vocab_is_eog
        self.context_size: int = self._llama.n_ctx()

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llama.detokenize([token], special=True).decode("utf-8", errors="replace")

    def close(self) -> None:
        self._llama.close()

    def tokenize(self, text: str) -> list[int]:
        """The model's tokens for plain text (no special tokens, no BOS)."""
        return list(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def prompt_tokens(self, turns: tuple[Turn, ...]) -> list[int]:
        """The chat template applied to `turns`, with the assistant's turn opened, as tokens."""
        messages: Any = [{"role": turn.role, "content": turn.content} for turn in turns]
        try:
            rendered = self._formatter(messages=messages)
        except Exception as error:  # the template's own `raise_exception`, or a Jinja error
            raise InvalidRequest(
                f"The model's chat template rejected the messages: {error}", param="messages"
            ) from None
        return list(
            self._llama.tokenize(
                rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
            )
        )

    def generate(
        self, job: Generation, emit: Callable[[str], None], cancelled: threading.Event
    ) -> GenerationResult:
        """Run one generation, calling `emit` with each piece of text as soon as it is safe to send.

        The first call is `emit("")`, once the prompt is accepted: a stream can start from there,
        since every error after it is a failure mid-generation.
        """
        from llama_cpp.llama_grammar import LlamaGrammar

        prompt = self.prompt_tokens(job.turns)
        room = self.context_size - len(prompt)
        if room <= 0:
            raise InvalidRequest(
                f"This model's maximum context length is {self.context_size} tokens; "
                f"the messages take {len(prompt)}.",
                param="messages",
                code="context_length_exceeded",
            )
        emit("")
        limit = min(job.max_tokens, room) if job.max_tokens is not None else room
        sampling = job.sampling
        self._llama.set_seed(sampling.seed if sampling.seed is not None else random.getrandbits(31))
        grammar = LlamaGrammar.from_string(job.grammar, verbose=False) if job.grammar else None
        scanner = StopScanner(job.stop)
        produced = 0
        finish_reason = "length"
        tokens = self._llama.generate(
            prompt,
            temp=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
            min_p=sampling.min_p,
            repeat_penalty=sampling.repeat_penalty,
            presence_penalty=sampling.presence_penalty,
            frequency_penalty=sampling.frequency_penalty,
            grammar=grammar,
        )
        try:
            for token in tokens:
                if cancelled.is_set():
                    finish_reason = "cancelled"
                    break
                if self._is_end_of_turn(self._vocab, token):
                    finish_reason = "stop"
                    break
                produced += 1
                text = scanner.feed(self._llama.detokenize([token]))
                if text:
                    emit(text)
                if scanner.stopped:
                    finish_reason = "stop"
                    break
                if produced >= limit:
                    break
        finally:
            tokens.close()
        if finish_reason != "cancelled":
            rest = scanner.finish()
            if rest:
                emit(rest)
        return GenerationResult(finish_reason, len(prompt), produced)
