"""What the servicers share about the process's life: in-flight requests, draining, and the gateway swap.

`ServingState` is attached to every servicer (`attach`). The servicer decorators count each RPC in
and out against the gateway object that serves it, refuse new RPCs once draining, and register the
task of each open stream so that a drain whose grace ran out can end them with a final error
(`cut_streams`) instead of a dropped connection. A reload swaps a new gateway into every servicer at
once (`swap_gateway`), and the old one is closed when its last request ends.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

__all__ = ["ServingState", "attach", "swap_gateway"]

POLL_SECONDS = 0.05


class ServingState:
    def __init__(self, gateway: Any = None) -> None:
        # The gateway new requests go to; earlier ones retire once their last request ends.
        self.gateway = gateway
        self._retiring: set[asyncio.Task[None]] = set()
        self.draining = False
        self._by_gateway: dict[int, int] = {}
        self._streams: set[asyncio.Task[Any]] = set()
        self._cut: set[asyncio.Task[Any]] = set()

    @property
    def in_flight(self) -> int:
        return sum(self._by_gateway.values())

    def enter(self, gateway: object) -> None:
        key = id(gateway)
        self._by_gateway[key] = self._by_gateway.get(key, 0) + 1

    def leave(self, gateway: object) -> None:
        key = id(gateway)
        left = self._by_gateway.get(key, 0) - 1
        if left > 0:
            self._by_gateway[key] = left
        else:
            self._by_gateway.pop(key, None)

    def serving(self, gateway: object) -> int:
        return self._by_gateway.get(id(gateway), 0)

    def open_stream(self, task: asyncio.Task[Any] | None) -> None:
        if task is not None:
            self._streams.add(task)

    def close_stream(self, task: asyncio.Task[Any] | None) -> None:
        self._streams.discard(task)  # type: ignore[arg-type]
        self._cut.discard(task)  # type: ignore[arg-type]

    def was_cut(self, task: asyncio.Task[Any] | None) -> bool:
        return task in self._cut

    def cut_streams(self) -> int:
        """Cancel every open stream's task, marked so its servicer ends it with a final error."""
        for task in self._streams - self._cut:
            self._cut.add(task)
            task.cancel()
        return len(self._cut)

    async def wait_idle(self, timeout: float, gateway: object | None = None) -> bool:
        """Wait until no request is in flight (on `gateway`, or at all); False if `timeout` ran out."""
        deadline = time.monotonic() + timeout
        while (self.serving(gateway) if gateway is not None else self.in_flight) > 0:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_SECONDS)
        return True

    def retire(self, gateway: Any, close: Any) -> None:
        """Call `close()` once no request is in flight on `gateway` any more."""

        async def when_idle() -> None:
            while self.serving(gateway) > 0:
                await asyncio.sleep(POLL_SECONDS)
            await close()

        task = asyncio.get_running_loop().create_task(when_idle())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def close_gateways(self) -> None:
        """Close the current gateway, after any that are still retiring."""
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        if self.gateway is not None:
            await self.gateway.close()


def _servicers(servicers: Any) -> list[Any]:
    """Every servicer that serves through a gateway (they keep it in `_gateway`)."""
    return [servicer for servicer in servicers.each() if hasattr(servicer, "_gateway")]


def attach(servicers: Any, state: ServingState) -> None:
    for servicer in _servicers(servicers):
        servicer._serving = state


def swap_gateway(servicers: Any, state: ServingState, gateway: Any) -> Any:
    """Point every servicer at `gateway` and return the old one; no await in between, so no request
    starts on a mix of the two."""
    old = state.gateway
    for servicer in _servicers(servicers):
        servicer._gateway = gateway
    state.gateway = gateway
    return old
