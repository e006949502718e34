"""A fast fake OpenAI-compatible upstream for `make bench`.

It must never be the bottleneck, so it is a raw asyncio protocol (uvloop when installed) answering
from pre-encoded bytes, run as several processes on one SO_REUSEPORT port. It speaks just enough
HTTP/1.1 for keep-alive clients with Content-Length bodies (aiohttp, wrk):

- POST .../chat/completions: a chat.completion; with `"stream":true` an SSE stream of
  STREAM_CHUNKS chunk events (the last one carries usage) and `data: [DONE]`, written at once;
  with `"model":"slow"` and streaming, one event per `--slow-interval` seconds, until `--slow-chunks`
  events or until `--release-file` exists (the role chunk, words..., then finish, usage, [DONE]).
- POST .../embeddings: one 256-dimension embedding.
- GET .../models: a one-model list.

Usage: python bench/fake_upstream.py [--port 0] [--workers 2]; it prints `PORT <n>` once every worker
listens, and stops its workers on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from typing import Any

import orjson
from bench_common import install_uvloop, until_signalled

STREAM_CHUNKS = 11
EMBEDDING_DIMENSIONS = 256
_CREATED = 1_700_000_000
_USAGE = {
    "prompt_tokens": 24,
    "completion_tokens": 9,
    "total_tokens": 33,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
_WORDS = ("The", " meaning", " of", " life", " is", " to", " benchmark", " it", ".")


def _completion() -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-bench0001",
            "object": "chat.completion",
            "created": _CREATED,
            "model": "bench-model",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "".join(_WORDS),
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _USAGE,
            "service_tier": "default",
            "system_fingerprint": "fp_bench",
        }
    )


def _chunk(delta: dict[str, Any] | None, finish: str | None = None, usage: bool = False) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-bench0001",
        "object": "chat.completion.chunk",
        "created": _CREATED,
        "model": "bench-model",
        "service_tier": "default",
        "system_fingerprint": "fp_bench",
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": _USAGE if usage else None,
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


def stream_events(chunks: int = STREAM_CHUNKS) -> list[bytes]:
    """`chunks` SSE chunk events (role, words, finish, usage) followed by [DONE]."""
    events = [_chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [_chunk({"content": _WORDS[i % len(_WORDS)]}) for i in range(max(0, chunks - 3))]
    events.append(_chunk({}, finish="stop"))
    events.append(_chunk(None, usage=True))
    events.append(b"data: [DONE]\n\n")
    return events


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _response(status: bytes, content_type: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: "
        + content_type
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: keep-alive\r\n\r\n"
        + body
    )


_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
)
_EVENTS = stream_events()
CHAT_REPLY = _response(b"200 OK", b"application/json", _completion())
STREAM_REPLY = _STREAM_HEAD + b"".join(_http_chunk(event) for event in _EVENTS) + b"0\r\n\r\n"
EMBEDDING_REPLY = _response(
    b"200 OK",
    b"application/json",
    orjson.dumps(
        {
            "object": "list",
            "data": [
                {
                    "object": "embedding",
                    "index": 0,
                    "embedding": [
                        round(((i * 7919) % 2000) / 1000 - 1, 6) for i in range(EMBEDDING_DIMENSIONS)
                    ],
                }
            ],
            "model": "bench-embedding",
            "usage": {"prompt_tokens": 8, "total_tokens": 8},
        }
    ),
)
MODELS_REPLY = _response(
    b"200 OK",
    b"application/json",
    orjson.dumps(
        {
            "object": "list",
            "data": [{"id": "bench-model", "object": "model", "created": 0, "owned_by": "bench"}],
        }
    ),
)
NOT_FOUND = _response(
    b"404 Not Found",
    b"application/json",
    b'{"error":{"message":"not found","type":"invalid_request_error","param":null,"code":null}}',
)
LENGTH_REQUIRED = _response(b"411 Length Required", b"text/plain", b"length required")
_MAX_HEAD = 64 * 1024


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection; requests are answered in order."""

    __slots__ = ("transport", "buffer", "busy", "close_after", "slow_events", "slow_interval", "slow_max")

    def __init__(self, slow_events: list[bytes], slow_interval: float, slow_max: int) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False
        self.close_after = False
        self.slow_events = slow_events
        self.slow_interval = slow_interval
        self.slow_max = slow_max

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._serve()

    def _serve(self) -> None:
        buffer = self.buffer
        transport = self.transport
        while transport is not None and not self.busy:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > _MAX_HEAD:
                    transport.close()
                return
            head = bytes(buffer[:end]).lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else None])
            elif b"\r\ntransfer-encoding:" in head:
                transport.write(LENGTH_REQUIRED)
                transport.close()
                return
            total = end + 4 + length
            if len(buffer) < total:
                return
            body = bytes(buffer[end + 4 : total])
            del buffer[:total]
            path = head[: head.find(b" http/")]
            if path.endswith(b"/chat/completions"):
                if b'"stream":true' not in body:
                    transport.write(CHAT_REPLY)
                elif b'"model":"slow"' in body:
                    self.busy = True
                    asyncio.ensure_future(self._slow_stream())
                else:
                    transport.write(STREAM_REPLY)
            elif path.endswith(b"/embeddings"):
                transport.write(EMBEDDING_REPLY)
            elif path.endswith(b"/models"):
                transport.write(MODELS_REPLY)
            else:
                transport.write(NOT_FOUND)
            if b"\r\nconnection: close" in head:
                if self.busy:
                    self.close_after = True
                else:
                    transport.close()
                return

    async def _slow_stream(self) -> None:
        transport = self.transport
        try:
            if transport is None:
                return
            events = self.slow_events
            transport.write(_STREAM_HEAD + _http_chunk(events[0]))
            sent = 1
            while not RELEASE.released and sent < self.slow_max:
                await asyncio.sleep(self.slow_interval)
                if transport.is_closing():
                    return
                transport.write(_http_chunk(events[1 + (sent - 1) % len(_WORDS)]))
                sent += 1
            await asyncio.sleep(self.slow_interval)
            if transport.is_closing():
                return
            transport.write(b"".join(_http_chunk(event) for event in events[-3:]) + b"0\r\n\r\n")
            if self.close_after:
                transport.close()
                return
        finally:
            self.busy = False
        if self.buffer:
            self._serve()


class Release:
    """Slow streams end once `path` exists (checked a few times a second), so a test holding thousands
    of them open decides when they finish, however long opening them took."""

    released = False

    async def watch(self, path: str | None) -> None:
        if path is None:
            return
        while not os.path.exists(path):
            await asyncio.sleep(0.2)
        self.released = True


RELEASE = Release()


def _listening_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(args: argparse.Namespace, port: int, ready: int) -> None:
    install_uvloop()

    async def main() -> None:
        sock = _listening_socket(args.host, port)
        sock.listen(4096)
        loop = asyncio.get_running_loop()
        slow_events = stream_events(len(_WORDS) + 3)
        server = await loop.create_server(
            lambda: UpstreamProtocol(slow_events, args.slow_interval, args.slow_chunks - 2),
            sock=sock,
            backlog=4096,
        )
        watcher = asyncio.ensure_future(RELEASE.watch(args.release_file))
        os.write(ready, b"1")
        os.close(ready)
        await until_signalled()
        watcher.cancel()
        server.close()

    asyncio.run(main())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--slow-interval", type=float, default=1.0, help="seconds between events of a slow stream"
    )
    parser.add_argument(
        "--slow-chunks", type=int, default=STREAM_CHUNKS, help="most chunk events in a slow stream"
    )
    parser.add_argument("--release-file", help="slow streams end early once this file exists")
    args = parser.parse_args()
    # Hold the port (bound, never listening) so every worker can join it with SO_REUSEPORT.
    holder = _listening_socket(args.host, args.port)
    port = holder.getsockname()[1]
    read_end, write_end = os.pipe()
    children: list[int] = []
    for _ in range(max(1, args.workers)):
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            holder.close()
            _worker(args, port, write_end)
            os._exit(0)
        children.append(pid)
    os.close(write_end)
    started = 0
    while started < len(children):
        got = os.read(read_end, 64)
        if not got:
            print("fake upstream: a worker failed to start", file=sys.stderr)
            return 1
        started += len(got)
    print(f"PORT {port}", flush=True)

    def stop(signum: int, frame: object) -> None:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for pid in children:
        while True:
            try:
                os.waitpid(pid, 0)
                break
            except ChildProcessError:
                break
            except InterruptedError:
                continue
    return 0


if __name__ == "__main__":
    sys.exit(main())
