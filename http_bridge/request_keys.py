"""Request-scoped state the bridge's modules share, apart from any of them (so none imports another
for it: http_bridge.observe imports the app, and the route modules must not)."""

from __future__ import annotations

from aiohttp import web

__all__ = ["RPC_CALLED"]

# Set once a request's gRPC call is made: a refusal before it is the bridge's own (measured and logged
# by observe.py, and told 401 first if the caller has no key, route_auth.py).
RPC_CALLED = web.RequestKey("siraya_rpc_called", bool)
