"""401 before anything else: the key a refused request must show before it hears why.

A request the bridge refuses before its call (a body that is no JSON, a parameter out of range, a
query it cannot read) would tell anyone how the API validates. So that refusal is held back until
the caller's key is checked: without a valid key the answer is the refusal the call itself would
have given (401, or the admin API's 403 when key administration is off). Only refusals pay for this
check; a good request's key is checked once, by its call.

Which key a path needs follows from the path, so a route added later is covered the day it appears:

    /v1/keys, /v1/teams ...  the admin key (key and team administration)
    any other /v1/...        a gateway key; the admin key passes too (it reads usage and models,
                             and an admin learning a body's errors learns nothing secret)
    anything else            none: health, metrics, /openapi.json, and the console (its own session)
"""

from __future__ import annotations

from enum import Enum

from http_bridge.accounts_routes import KEYS_PATH
from http_bridge.stubs import GatewayStubs
from server.errors import AuthenticationFailed, GatewayError, PermissionDenied

__all__ = ["API_PREFIX", "KeyNeed", "caller_refusal", "key_need"]

API_PREFIX = "/v1/"
TEAMS_PATH = "/v1/teams"
_ADMIN_PATHS = (KEYS_PATH, TEAMS_PATH)


class KeyNeed(Enum):
    NONE = "none"
    GATEWAY_KEY = "gateway key"
    ADMIN_KEY = "admin key"


def key_need(path: str) -> KeyNeed:
    """The key a call on `path` (a route's canonical path, or a request's path) needs."""
    if not path.startswith(API_PREFIX):
        return KeyNeed.NONE
    if any(path == admin or path.startswith(admin + "/") for admin in _ADMIN_PATHS):
        return KeyNeed.ADMIN_KEY
    return KeyNeed.GATEWAY_KEY


async def caller_refusal(
    stubs: GatewayStubs, path: str, authorization: str | None, failure: GatewayError
) -> GatewayError:
    """`failure`, unless the caller lacks the key `path` needs: then the refusal of its key."""
    need = key_need(path)
    if need is KeyNeed.NONE or isinstance(failure, AuthenticationFailed):
        return failure
    if stubs.authorize_admin is not None:
        try:
            stubs.authorize_admin(authorization)
            return failure
        except (AuthenticationFailed, PermissionDenied) as refused:
            if need is KeyNeed.ADMIN_KEY:
                return refused
    if need is KeyNeed.GATEWAY_KEY and stubs.authenticate is not None:
        try:
            await stubs.authenticate(authorization)
        except (AuthenticationFailed, PermissionDenied) as refused:
            return refused
    return failure
