"""In-flight counting, drain cuts and gateway swaps (server/lifecycle.py), and the tracing switch."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from server.lifecycle import ServingState, attach, swap_gateway
from server.observability.tracing import wanted


class _Gateway:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


async def test_wait_idle_waits_for_the_last_request() -> None:
    state = ServingState()
    gateway = object()
    state.enter(gateway)
    state.enter(gateway)
    assert not await state.wait_idle(0.1)
    state.leave(gateway)
    asyncio.get_running_loop().call_later(0.1, state.leave, gateway)
    assert await state.wait_idle(5)
    assert state.in_flight == 0


async def test_a_swapped_out_gateway_closes_after_its_requests_end() -> None:
    old, new = _Gateway(), _Gateway()
    chat, models = SimpleNamespace(_gateway=old), SimpleNamespace(_gateway=old)
    servicers = SimpleNamespace(chat=chat, models=models, each=lambda: [chat, models])
    state = ServingState(old)
    attach(servicers, state)
    assert servicers.chat._serving is state
    state.enter(old)
    assert swap_gateway(servicers, state, new) is old
    assert (servicers.chat._gateway, servicers.models._gateway, state.gateway) == (new, new, new)
    state.retire(old, old.close)
    await asyncio.sleep(0.2)
    assert not old.closed
    state.leave(old)
    await state.close_gateways()
    assert old.closed and new.closed


async def test_cut_streams_cancels_open_streams_and_marks_them() -> None:
    state = ServingState()
    started = asyncio.Event()

    async def stream() -> str:
        task = asyncio.current_task()
        state.open_stream(task)
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            assert task is not None
            return "cut" if state.was_cut(task) else "cancelled"
        finally:
            state.close_stream(task)
        return "finished"

    task = asyncio.create_task(stream())
    await started.wait()
    assert state.cut_streams() == 1
    assert await task == "cut"


def test_tracing_is_off_unless_configured_or_asked_for_by_otel_variables() -> None:
    assert not wanted(False, {})
    assert wanted(True, {})
    assert wanted(False, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert wanted(False, {"OTEL_TRACES_EXPORTER": "otlp"})
    assert not wanted(False, {"OTEL_TRACES_EXPORTER": "none"})
    assert not wanted(True, {"OTEL_SDK_DISABLED": "true"})
