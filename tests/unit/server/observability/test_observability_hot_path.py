"""The hot path's cheap replacements keep their promises: unique request ids, batched access lines."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re

from server.observability.ids import new_request_id
from server.observability.logs import BATCH_LINES, BATCH_SECONDS, AccessLog


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_request_ids_are_unique_and_keep_their_shape() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"req_[0-9a-f]{24}", rid) for rid in ids)


def test_a_forked_worker_gets_its_own_request_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    os.close(write)
    parent = new_request_id()
    # Same shape, different per-process prefix: the counters may meet, the ids may not.
    assert child[:16] != parent[:16] and len(child) == len(parent)


def test_batched_lines_of_one_batch_window_go_out_in_one_write() -> None:
    stream = CountingStream()
    log = AccessLog()
    log.configure(stream, True, batched=True)

    async def serve() -> tuple[str, int]:
        for n in range(5):
            log.write({"request_id": f"req_{n}", "status": 200})
            await asyncio.sleep(0)  # other loop iterations in between: still one batch
        before = (stream.getvalue(), stream.writes)
        await asyncio.sleep(BATCH_SECONDS * 2)
        return before

    before, writes_before = asyncio.run(serve())
    assert (before, writes_before) == ("", 0)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == [f"req_{n}" for n in range(5)]
    assert stream.writes == 1
    assert lines[0]["msg"] == "request" and lines[0]["pid"] == os.getpid()


def test_a_full_batch_goes_out_at_once() -> None:
    stream = CountingStream()
    log = AccessLog()
    log.configure(stream, True, batched=True)

    async def serve() -> int:
        for n in range(BATCH_LINES):
            log.write({"request_id": f"req_{n}"})
        return stream.writes

    assert asyncio.run(serve()) == 1
    assert len(stream.getvalue().splitlines()) == BATCH_LINES


def test_batched_lines_outside_a_loop_and_on_reconfigure_are_not_lost() -> None:
    stream = CountingStream()
    log = AccessLog()
    log.configure(stream, True, batched=True)
    log.write({"request_id": "no-loop"})
    assert "no-loop" in stream.getvalue()

    async def one() -> None:
        log.write({"request_id": "pending", "key": "sk-proj-abcdefghijklmnop"})
        log.configure(None, False)  # before the loop got to flush

    asyncio.run(one())
    text = stream.getvalue()
    assert '"request_id":"pending"' in text and "sk-proj-abcdefghijklmnop" not in text
