"""The local provider: GGUF chat models served in-process through llama-cpp-python (the `local` extra).

`request.to_generation` translates chat params, `engine.LlamaEngine` owns the model and its token
loop, `text.StopScanner` releases text safely, `worker.InferenceWorker` runs one request at a time
off the event loop, and `provider.LocalProvider` ties them together. Nothing here imports llama.cpp
until a model is loaded.
"""

from __future__ import annotations

from server.providers.local.provider import LocalProvider

__all__ = ["LocalProvider"]
