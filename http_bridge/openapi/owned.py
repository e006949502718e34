"""The operations and schemas of the routes OpenAI's spec does not have: ours to describe.

Key administration, a key's own view and the ledger (`/v1/keys`, `/v1/key`, `/v1/generation(s)`,
`/v1/usage`, `/v1/providers`, `/v1/audit`), Anthropic's Messages door (`/v1/messages`), the video
alias `/v1/videos/generations`, and operations (`/health/*`, `/metrics`, `/openapi.json`). Each one
is written from its handler (http_bridge/*_routes.py): the request it takes and the reply it gives,
so that schemathesis can hold the running gateway to them (tests/e2e/hardening/test_openapi_fuzz.py). A
schema may reference OpenAI's components; the vendoring (vendor.py) copies what they name.

The groups live apart (owned_keys.py, owned_ledger.py, owned_messages.py, built with owned_parts.py);
this module joins them, in the document's order, with the video alias and the operations routes.
"""

from __future__ import annotations

from http_bridge.openapi.owned_keys import KEY_OPERATIONS, KEY_SCHEMAS
from http_bridge.openapi.owned_ledger import LEDGER_OPERATIONS, LEDGER_SCHEMAS
from http_bridge.openapi.owned_messages import MESSAGES_OPERATIONS, MESSAGES_SCHEMAS
from http_bridge.openapi.owned_parts import JsonObject, json_reply, operation, ref

__all__ = ["OWNED_OPERATIONS", "OWNED_SCHEMAS"]

OWNED_SCHEMAS: dict[str, JsonObject] = {
    **KEY_SCHEMAS,
    **LEDGER_SCHEMAS,
    "SirayaHealth": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["ok", "ready", "not ready"]}},
    },
    **MESSAGES_SCHEMAS,
}

OWNED_OPERATIONS: dict[tuple[str, str], JsonObject] = {
    **KEY_OPERATIONS,
    **LEDGER_OPERATIONS,
    **MESSAGES_OPERATIONS,
    ("POST", "/v1/videos/generations"): operation(
        "createVideoGeneration",
        "The same as POST /v1/videos.",
        "Videos",
        {"200": json_reply(ref("VideoResource"))},
        request_body={
            "required": True,
            "content": {
                "application/json": {"schema": ref("CreateVideoJsonBody")},
                "multipart/form-data": {"schema": ref("CreateVideoMultipartBody")},
            },
        },
    ),
    ("GET", "/health/live"): operation(
        "live", "Whether the process is up.", "Operations", {"200": json_reply(ref("SirayaHealth"))}
    ),
    ("GET", "/health/ready"): operation(
        "ready",
        "Whether the gateway takes requests.",
        "Operations",
        {"200": json_reply(ref("SirayaHealth")), "503": json_reply(ref("SirayaHealth"), "Not ready")},
    ),
    ("GET", "/metrics"): operation(
        "metrics",
        "Prometheus metrics.",
        "Operations",
        {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}},
    ),
    ("GET", "/openapi.json"): operation(
        "openapi", "This document.", "Operations", {"200": json_reply({"type": "object"})}
    ),
}
