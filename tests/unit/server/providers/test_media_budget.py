"""Media budgets (issue #20, defect 2): per request (parts, bytes) and per process (bytes, fetches).

Real aiohttp servers on 127.0.0.1 serve the media; each test builds its own process budget, so
none shares the process-wide one.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import pytest
from aiohttp import web

from server.errors import InvalidRequest, NoAvailableProvider
from server.providers.media_budget import BUSY_CODE, Budget, MediaLimits, ProcessMediaBudget
from server.providers.media_splice import Payload, Splicer
from server.providers.remote_media import Media, MediaFetcher, MediaPolicy

PNG = b"\x89PNG\r\n\x1a\n"
CAP = 1000
POLICY = MediaPolicy(max_bytes=CAP, allow_private_addresses=True, allow_http=True, timeout=5)


def part(index: int) -> str:
    return f"messages[0].content[{index}].image_url"


@dataclass
class Host:
    port: int = 0
    hits: int = 0
    open_now: int = 0
    most_open: int = 0
    chunked_finished: bool = False

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def host() -> AsyncIterator[Host]:
    state = Host()

    async def sized(request: web.Request) -> web.Response:
        state.hits += 1
        return web.Response(body=PNG + bytes(int(request.match_info["size"]) - 8), content_type="image/png")

    async def chunked(request: web.Request) -> web.StreamResponse:
        state.hits += 1
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(256):  # 16 MiB, more than loopback buffers, if nobody hangs up
                await response.write(PNG + bytes(65528))
        except (ConnectionError, RuntimeError):
            return response
        state.chunked_finished = True
        return response

    async def slow(request: web.Request) -> web.Response:
        state.hits += 1
        state.open_now += 1
        state.most_open = max(state.most_open, state.open_now)
        await asyncio.sleep(0.1)
        state.open_now -= 1
        return web.Response(body=PNG + bytes(92), content_type="image/png")

    app = web.Application()
    app.router.add_get("/sized/{size}", sized)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = runner.addresses[0][1]
    yield state
    await runner.cleanup()


def make_fetcher(
    *,
    urls: int = 8,
    per_request: int = 4 * CAP,
    in_flight: int = 8 * CAP,
    fetches: int = 8,
    policy: MediaPolicy = POLICY,
) -> tuple[MediaFetcher, ProcessMediaBudget]:
    budget = ProcessMediaBudget(in_flight, fetches)
    limits = MediaLimits(
        urls_per_request=urls,
        bytes_per_request=per_request,
        bytes_in_flight=in_flight,
        fetches_in_flight=fetches,
    )
    return MediaFetcher(policy, limits=limits, budget=budget), budget


def idle(budget: ProcessMediaBudget, in_flight: int = 8 * CAP, fetches: int = 8) -> bool:
    return budget.bytes.available == in_flight and budget.fetches.available == fetches


# --- per request ------------------------------------------------------------------------------


async def test_more_parts_than_the_budget_is_a_400_naming_the_first_extra_part_before_any_fetch(
    host: Host,
) -> None:
    fetcher, budget = make_fetcher(urls=3)
    refs = [(part(i), host.url("/sized/100")) for i in range(1, 6)]
    with pytest.raises(InvalidRequest) as refused:
        await fetcher.fetch_all(refs)
    assert (refused.value.param, refused.value.code) == (part(4), "too_many_media_parts")
    assert host.hits == 0
    assert idle(budget)
    await fetcher.close()


async def test_declared_bytes_over_the_request_budget_are_a_400_naming_the_part_that_crossed_it(
    host: Host,
) -> None:
    fetcher, budget = make_fetcher(per_request=1500)
    refs = [(part(i), host.url("/sized/900")) for i in range(1, 4)]
    with pytest.raises(InvalidRequest) as refused:
        await fetcher.fetch_all(refs)
    assert refused.value.code == "media_too_large"
    assert refused.value.param in {part(1), part(2), part(3)}
    assert refused.value.message.endswith(f"({refused.value.param})")
    assert idle(budget)
    await fetcher.close()


async def test_undeclared_bytes_are_counted_as_they_arrive_and_the_connection_dropped(host: Host) -> None:
    fetcher, budget = make_fetcher(per_request=5000, policy=MediaPolicy(max_bytes=32 << 20, **_LOCAL))
    with pytest.raises(InvalidRequest) as refused:
        await fetcher.fetch_all([(part(1), host.url("/chunked"))])
    assert (refused.value.param, refused.value.code) == (part(1), "media_too_large")
    await asyncio.sleep(0.1)
    assert not host.chunked_finished
    assert idle(budget)
    await fetcher.close()


_LOCAL = {"allow_private_addresses": True, "allow_http": True}


async def test_data_urls_count_toward_the_request_budget() -> None:
    fetcher, budget = make_fetcher(per_request=1200)
    data_url = "data:image/png;base64," + base64.b64encode(PNG + bytes(692)).decode()
    with pytest.raises(InvalidRequest) as refused:
        await fetcher.fetch_all([(part(1), data_url), (part(2), data_url)])
    assert (refused.value.param, refused.value.code) == (part(2), "media_too_large")
    media, lease = await fetcher.fetch_all([(part(1), data_url)])
    assert media[part(1)].data == PNG + bytes(692)
    lease.release()
    assert idle(budget)


async def test_a_request_within_its_budgets_gets_every_part_and_keeps_only_what_it_used(host: Host) -> None:
    fetcher, budget = make_fetcher()
    refs = [(part(1), host.url("/sized/300")), (part(2), host.url("/sized/500"))]
    media, lease = await fetcher.fetch_all(refs)
    assert [len(media[param].data) for param, _ in refs] == [300, 500]
    # The worst case (2 x CAP) was reserved; after the fetch only the 800 bytes held are.
    assert budget.bytes.available == 8 * CAP - 800
    assert budget.fetches.available == 8
    lease.release()
    lease.release()  # idempotent
    assert idle(budget)
    await fetcher.close()


# --- per process ------------------------------------------------------------------------------


async def test_the_process_byte_budget_makes_a_request_wait_for_room_first_come_first_served(
    host: Host,
) -> None:
    fetcher, budget = make_fetcher(per_request=CAP, in_flight=2 * CAP)
    _, first = await fetcher.fetch_all([(part(1), host.url("/sized/900"))])
    _, second = await fetcher.fetch_all([(part(1), host.url("/sized/900"))])
    # 200 bytes left: a third request's worst case (CAP) does not fit until one of these is sent.
    third = asyncio.ensure_future(fetcher.fetch_all([(part(1), host.url("/sized/900"))]))
    await asyncio.sleep(0.2)
    assert not third.done()
    assert host.hits == 2
    first.release()
    media, lease = await asyncio.wait_for(third, 5)
    assert len(media[part(1)].data) == 900
    for held in (second, lease):
        held.release()
    assert idle(budget, in_flight=2 * CAP)
    await fetcher.close()


async def test_no_room_within_the_timeout_is_a_503_that_fetched_nothing(host: Host) -> None:
    policy = MediaPolicy(max_bytes=CAP, timeout=0.2, **_LOCAL)
    fetcher, budget = make_fetcher(per_request=CAP, in_flight=CAP, policy=policy)
    _, held = await fetcher.fetch_all([(part(1), host.url("/sized/900"))])
    with pytest.raises(NoAvailableProvider) as busy:
        await fetcher.fetch_all([(part(1), host.url("/sized/900"))])
    assert busy.value.code == BUSY_CODE
    assert busy.value.kind.http_status == 503
    assert busy.value.retry_after is not None
    assert host.hits == 1
    held.release()
    assert idle(budget, in_flight=CAP)
    await fetcher.close()


async def test_fetches_in_flight_are_capped_per_process(host: Host) -> None:
    fetcher, budget = make_fetcher(fetches=2)
    refs = [(part(i), host.url("/slow")) for i in range(1, 5)]
    results = await asyncio.gather(fetcher.fetch_all(refs), fetcher.fetch_all(refs))
    assert host.hits == 8
    assert host.most_open == 2
    for _, lease in results:
        lease.release()
    assert idle(budget, fetches=2)
    await fetcher.close()


async def test_a_cancelled_request_gives_its_reservation_and_slots_back(host: Host) -> None:
    fetcher, budget = make_fetcher()
    task = asyncio.ensure_future(fetcher.fetch_all([(part(i), host.url("/slow")) for i in range(1, 4)]))
    await asyncio.sleep(0.03)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert idle(budget)
    await fetcher.close()


async def test_budget_is_strictly_first_come_first_served_and_a_timed_out_head_lets_the_next_in() -> None:
    budget = Budget(10)
    await budget.acquire(8, None)
    big = asyncio.ensure_future(budget.acquire(5, None))
    small = asyncio.ensure_future(budget.acquire(1, None))
    await asyncio.sleep(0)
    assert not big.done() and not small.done()  # 2 are free, but the 1 may not overtake the 5
    budget.release(8)
    await asyncio.wait_for(asyncio.gather(big, small), 1)
    assert budget.available == 4

    with pytest.raises(TimeoutError):
        await budget.acquire(9, 0.05)
    assert budget.available == 4
    slow_head = asyncio.ensure_future(budget.acquire(9, 0.05))
    behind = asyncio.ensure_future(budget.acquire(3, None))
    await asyncio.sleep(0)
    assert not behind.done()
    with pytest.raises(TimeoutError):
        await slow_head
    await asyncio.wait_for(behind, 1)  # the head gave up: the next in line fits and is let in
    assert budget.available == 1
    with pytest.raises(ValueError):
        await budget.acquire(11, None)


# --- the body that carries the media --------------------------------------------------------


def test_splicer_puts_base64_bytes_where_the_placeholders_were_and_drops_the_raw_bytes() -> None:
    splicer = Splicer()
    first, second = Media(bytearray(b"\x89PNG one"), "image/png"), Media(b"%PDF two", "application/pdf")
    held = splicer.hold_all({"a": first, "b": second})
    assert held["a"].data == b"" and held["a"].token is not None
    body = {
        "text": "a client could write ~siraya-media- in its text",
        "parts": [
            {"inlineData": {"mimeType": held["a"].media_type, "data": held["a"].token}},
            {"inlineData": {"mimeType": held["b"].media_type, "data": held["b"].token}},
        ],
    }
    pieces = splicer.encode(body)
    expected = {
        **body,
        "parts": [
            {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(b"\x89PNG one").decode()}},
            {"inlineData": {"mimeType": "application/pdf", "data": base64.b64encode(b"%PDF two").decode()}},
        ],
    }
    assert orjson.loads(b"".join(pieces)) == expected
    assert splicer._held == [None, None]  # the raw bytes are no longer referenced

    payload = Payload(pieces)
    payload.sent()
    assert pieces == []
