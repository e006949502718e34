"""The local provider: a GGUF chat model run in-process by llama.cpp, one request at a time.

Config: `type: local` with `model_path` (a GGUF file) or `bundled_model` (a name in
`BUNDLED_MODELS`), plus `context_size`, `threads`, `queue_size`, and for requests that set none,
`default_max_tokens` and `repeat_penalty` (the bundled model's is measured). One provider is one model:
every model id routed to it is served by that file, whatever its `upstream_model` says.

The model loads on the worker thread as soon as the provider is built, so start-up never waits on
it. The Responses API is served through chat; embeddings, images and videos are refused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import Future
from pathlib import Path

from server.config import LimitsConfig, LocalProviderConfig
from server.errors import GatewayError, UpstreamError
from server.providers.base import RequestContext
from server.providers.chat_only import ChatOnly
from server.providers.local.bundled import BUNDLED_MODELS, bundled_model_path
from server.providers.local.engine import GenerationResult, LlamaEngine, ModelLoadError
from server.providers.local.request import Generation, to_generation
from server.providers.local.response import ChunkWriter, completion
from server.providers.local.worker import Emit, Finished, InferenceWorker
from siraya.router.v1 import chat_pb2

__all__ = ["LocalProvider", "default_repeat_penalty", "resolve_model_path"]

logger = logging.getLogger("siraya.providers.local")


def resolve_model_path(config: LocalProviderConfig) -> Path:
    """The GGUF file a local provider serves; config parsing has already checked that it exists."""
    if config.bundled_model:
        path = bundled_model_path(config.bundled_model)
        if path is None:
            raise ModelLoadError(f"the bundled model '{config.bundled_model}' is not installed")
        return path
    if not config.model_path:
        raise ModelLoadError("neither model_path nor bundled_model is set")
    return Path(config.model_path).expanduser()


def default_repeat_penalty(config: LocalProviderConfig) -> float:
    """The config's repeat penalty, else the one measured for the bundled model, else llama.cpp's 1.0."""
    if config.repeat_penalty is not None:
        return config.repeat_penalty
    if config.bundled_model in BUNDLED_MODELS:
        return BUNDLED_MODELS[config.bundled_model].repeat_penalty
    return 1.0


class LocalProvider(ChatOnly):
    """One GGUF model served in-process."""

    native_responses = False
    described_as = "a local chat model"

    def __init__(self, config: LocalProviderConfig, limits: LimitsConfig | None = None) -> None:
        # `limits` (media and reply budgets) are for HTTP upstreams; an in-process model has neither.
        self.name = config.name
        self._default_max_tokens = config.default_max_tokens
        self._repeat_penalty = default_repeat_penalty(config)
        self._worker = InferenceWorker(config.name, waiting=config.queue_size)
        path = resolve_model_path(config)
        # The first request waits for the load (seconds on a small CPU): the log says so.
        logger.info("local provider %s: loading the model %s", self.name, path.name)
        self._load_started = time.monotonic()
        self._engine: Future[LlamaEngine] = self._worker.submit(
            lambda: LlamaEngine(path, context_size=config.context_size, threads=config.threads)
        )
        self._engine.add_done_callback(self._log_load)

    def _log_load(self, loaded: Future[LlamaEngine]) -> None:
        if loaded.cancelled():
            return
        error = loaded.exception()
        if error is not None:
            logger.error("local provider %s: %s", self.name, error)
            return
        seconds = time.monotonic() - self._load_started
        logger.info("local provider %s: the model is ready (loaded in %.1f s)", self.name, seconds)

    def engine(self) -> LlamaEngine:
        """The loaded model (blocks until it is loaded); for tests and tools, not for the event loop."""
        return self._engine.result()

    @property
    def busy(self) -> int:
        """Requests running or queued."""
        return self._worker.admitted

    async def close(self) -> None:
        def unload() -> None:
            if self._engine.done() and self._engine.exception() is None:
                self._engine.result().close()

        await self._worker.close(unload)

    # generation

    def _job(self, params: chat_pb2.ChatCompletionParams) -> Generation:
        return to_generation(
            params,
            self.name,
            default_max_tokens=self._default_max_tokens,
            repeat_penalty=self._repeat_penalty,
        )

    async def _generate(
        self, job: Generation, ctx: RequestContext
    ) -> AsyncIterator[str | Finished[GenerationResult]]:
        """Text pieces as the model writes them ("" first, once the prompt is accepted), then the result."""

        def run(emit: Emit, cancelled: threading.Event) -> GenerationResult:
            try:
                engine = self._engine.result()
            except ModelLoadError as error:
                raise UpstreamError(f"Provider '{self.name}' could not load its model: {error}.") from None
            return engine.generate(job, emit, cancelled)

        try:
            async for item in self._worker.stream(run, deadline=ctx.deadline):
                yield item
        except GatewayError:
            raise
        except Exception as error:
            logger.exception("local provider %s: generation failed", self.name)
            raise UpstreamError(
                f"Provider '{self.name}' failed while generating ({type(error).__name__})."
            ) from None

    async def chat(
        self, params: chat_pb2.ChatCompletionParams, upstream_model: str, ctx: RequestContext
    ) -> chat_pb2.ChatCompletion:
        job = self._job(params)
        pieces: list[str] = []
        async for item in self._generate(job, ctx):
            if isinstance(item, Finished):
                return completion("".join(pieces), item.result, upstream_model)
            pieces.append(item)
        raise UpstreamError(f"Provider '{self.name}' ended without a result.")

    async def stream_chat(
        self, params: chat_pb2.ChatCompletionParams, upstream_model: str, ctx: RequestContext
    ) -> AsyncIterator[chat_pb2.ChatCompletionChunk]:
        job = self._job(params)
        writer = ChunkWriter(upstream_model)
        started = False
        async for item in self._generate(job, ctx):
            if not started:
                started = True
                yield writer.role()
            if isinstance(item, Finished):
                yield writer.finish(item.result.finish_reason)
                # Always: the gateway meters it, and shows it only to a client that asked.
                yield writer.usage(item.result)
                return
            if item:
                yield writer.content(item)
