"""schemathesis against the running gateway, from the OpenAPI document it serves (issue #20).

Requests are generated from /openapi.json: bodies, queries and path parameters that fit the
schemas (positive) and that break them (negative), for the endpoints a client reaches most: chat
completions, embeddings, Responses, Anthropic's Messages and token count, key administration, the
ledger's queries, stored Responses and models. Upstreams are the fakes in tests/fakes, the OpenAI one
strict (it refuses a body that breaks OpenAI's request schema with a 400, as the real API does, for
the bodies the gateway forwards as written: the gateway must relay that 400). A generated
`model` is often replaced by one the gateway serves, so that requests get past the catalogue to an
upstream and back. Every answer must not be a 5xx, and must match the schema the document gives
for its status (OpenAI's own for OpenAI's paths).

Bounded for `make test` (FUZZ_EXAMPLES, default 12, cases per operation and mode); `make fuzz`
runs the same with many more.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance  # type: ignore[attr-defined]
from schemathesis.core.errors import UnsupportedSchema

from tests.e2e.loop_gateway import LoopGateway
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.openai_upstream import FakeOpenAIUpstream

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
ADMIN_KEY = "sk-admin-fuzz-0123456789abcdef"
UPSTREAM_KEY = "sk-upstream-fuzz-0123456789"
ANTHROPIC_KEY = "sk-ant-fuzz-0123456789"

CONFIG = """
server:
  host: 127.0.0.1
  http_port: 0
  grpc_port: 0
  data_dir: {data_dir}
  admin_key: {admin_key}
  max_body_bytes: 262144
providers:
  openai:
    type: openai
    base_url: {openai_url}
    api_key: ${{UPSTREAM_KEY}}
    native_responses: true
    read_timeout: 5
  anthropic:
    type: anthropic
    base_url: {anthropic_url}
    api_key: ${{ANTHROPIC_KEY}}
    read_timeout: 5
models:
  - id: gpt-test
    provider: openai
    upstream_model: gpt-4o-mini
    kind: chat
  - id: embed-test
    provider: openai
    upstream_model: text-embedding-3-small
    kind: embedding
  - id: claude-test
    provider: anthropic
    upstream_model: claude-sonnet-4-5-20250929
routing:
  breaker: {{enabled: false}}
"""

# (method, path, the model ids worth substituting, whether the admin key calls it)
OPERATIONS: list[tuple[str, str, tuple[str, ...], bool]] = [
    ("POST", "/v1/chat/completions", ("gpt-test", "claude-test"), False),
    ("POST", "/v1/embeddings", ("embed-test",), False),
    ("POST", "/v1/responses", ("gpt-test", "claude-test"), False),
    ("POST", "/v1/messages", ("claude-test", "gpt-test"), False),
    ("POST", "/v1/messages/count_tokens", ("claude-test", "gpt-test"), False),
    ("GET", "/v1/models/{model}", (), False),
    ("GET", "/v1/responses/{response_id}", (), False),
    ("GET", "/v1/responses/{response_id}/input_items", (), False),
    ("GET", "/v1/generations", (), False),
    ("GET", "/v1/usage", (), False),
    ("POST", "/v1/keys", (), True),
    ("PATCH", "/v1/keys/{key_id}", (), True),
    ("GET", "/v1/audit", (), True),
]
CHECKS = [not_a_server_error, response_schema_conformance]


class FuzzHarness(LoopGateway):
    """The gateway with an admin key, in front of a fake OpenAI-compatible and a fake Anthropic API."""

    def __init__(self, tmp_dir: Path) -> None:
        self.openai = FakeOpenAIUpstream(api_key=UPSTREAM_KEY, native_responses=True, strict=True)
        self.anthropic = FakeAnthropicUpstream(api_key=ANTHROPIC_KEY)
        super().__init__(tmp_dir, in_process=True, upstreams=(self.openai, self.anthropic))

    async def _start(self) -> None:
        await self._start_upstreams()
        config = CONFIG.format(
            data_dir=self.tmp_dir / "data",
            admin_key=ADMIN_KEY,
            openai_url=self.openai.base_url,
            anthropic_url=self.anthropic.base_url,
        )
        env = {"UPSTREAM_KEY": UPSTREAM_KEY, "ANTHROPIC_KEY": ANTHROPIC_KEY}
        await self._start_gateway(config, env, "fuzz")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzHarness]:
    running = FuzzHarness(tmp_path_factory.mktemp("fuzz")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def schema(gateway: FuzzHarness) -> Any:
    return schemathesis.openapi.from_url(f"{gateway.root_url}/openapi.json")


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as opened:
        yield opened


def _with_model(case: Any, model: str | None) -> Any:
    if model is not None and isinstance(case.body, dict) and "model" in case.body:
        case.body = {**case.body, "model": model}
    return case


# A string path parameter with no constraint has no value that breaks its schema.
POSITIVE_ONLY = {("GET", "/v1/models/{model}")}
CASES = [
    pytest.param(method, path, models, admin, mode, id=f"{method} {path} {mode}")
    for method, path, models, admin in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or (method, path) not in POSITIVE_ONLY
]


@pytest.mark.parametrize(("method", "path", "models", "admin", "mode"), CASES)
def test_no_server_error_and_replies_match_the_document(
    gateway: FuzzHarness,
    schema: Any,
    session: requests.Session,
    method: str,
    path: str,
    models: tuple[str, ...],
    admin: bool,
    mode: GenerationMode,
) -> None:
    operation = schema[path][method]
    headers = {"Authorization": f"Bearer {ADMIN_KEY if admin else gateway.api_key}"}
    cases = operation.as_strategy(generation_mode=mode, headers=headers)
    substitutes = st.sampled_from([None, *models]) if models else st.none()

    @given(data=st.data(), model=substitutes)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(data: st.DataObject, model: str | None) -> None:
        try:
            case = data.draw(cases)
        except UnsupportedSchema:
            # schemathesis cannot negate some of OpenAI's recursive schemas (a `not` it cannot
            # complement): that draw is skipped, not the operation.
            reject()
        _with_model(case, model).call_and_validate(
            base_url=gateway.root_url, session=session, headers=headers, checks=CHECKS, timeout=30
        )

    run()


TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}),
        ("/v1/chat/completions", {"model": "claude-test", "messages": [{"role": "user", "content": "hi"}]}),
        (
            "/v1/chat/completions",
            {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "tools": [TOOL]},
        ),
        ("/v1/responses", {"model": "gpt-test", "input": "hi"}),
        (
            "/v1/messages",
            {"model": "claude-test", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
        ),
        (
            "/v1/messages",
            {"model": "gpt-test", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
        ),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_a_plain_reply_matches_the_document(
    gateway: FuzzHarness,
    schema: Any,
    session: requests.Session,
    path: str,
    body: dict[str, Any],
    stream: bool,
) -> None:
    """Each reply, and each event of a stream, checked against the document's schema for it."""
    headers = {"Authorization": f"Bearer {gateway.api_key}"}
    case = schema[path]["POST"].Case(body={**body, "stream": stream}, headers=headers)
    response = case.call_and_validate(base_url=gateway.root_url, session=session, checks=CHECKS, timeout=30)
    assert response.status_code == 200, response.text
    kind = response.headers["content-type"][0]
    assert kind.startswith("text/event-stream" if stream else "application/json"), kind


def test_the_fuzzed_operations_are_in_the_document(schema: Any) -> None:
    labels = {result.ok().label for result in schema.get_all_operations()}
    assert {f"{method} {path}" for method, path, _, _ in OPERATIONS} <= labels


# What schemathesis found, kept as plain regressions: each was a 500 before its fix.


def _call(gateway: FuzzHarness, method: str, path: str, *, admin: bool = False, **kwargs: Any) -> Any:
    key = ADMIN_KEY if admin else gateway.api_key
    return requests.request(
        method, gateway.root_url + path, headers={"Authorization": f"Bearer {key}"}, timeout=30, **kwargs
    )


@pytest.mark.parametrize("admin", [False, True], ids=["key", "admin"])
@pytest.mark.parametrize(
    "query",
    [
        "min_cost=6.225493555362099e%2B16",
        "max_cost=1e300",
        "since=nan",
        "until=1e400",
        "since=-inf",
        "since=1e308d",
        "limit=%C2%B2",
        "limit=99999999999999999999",
    ],
)
@pytest.mark.parametrize("path", ["/v1/usage", "/v1/generations"])
def test_a_ledger_query_out_of_range_is_400(gateway: FuzzHarness, path: str, query: str, admin: bool) -> None:
    if path == "/v1/usage" and query.startswith("limit"):
        query = query.replace("limit", "min_cost")
    response = _call(gateway, "GET", f"{path}?{query}", admin=admin)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("query", ["limit=%C2%B2", "limit=4294967296", "before_id=99999999999999999999"])
def test_an_audit_query_out_of_range_is_400(gateway: FuzzHarness, query: str) -> None:
    response = _call(gateway, "GET", f"/v1/audit?{query}", admin=True)
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    "settings",
    [
        {"name": "0", "expires_at": 2**63},
        {"name": "0", "rpm_limit": 2**31},
        {"name": "0", "tpm_limit": 2**64},
        {"name": "0", "credit_limit": 1e308},
        {"name": "0", "expires_at": -(2**70)},
    ],
)
def test_key_settings_out_of_range_are_400(gateway: FuzzHarness, settings: dict[str, Any]) -> None:
    created = _call(gateway, "POST", "/v1/keys", admin=True, json=settings)
    assert created.status_code == 400, created.text
    assert created.json()["error"]["param"] == next(name for name in settings if name != "name")
    updated = _call(
        gateway,
        "PATCH",
        "/v1/keys/key_none",
        admin=True,
        json={k: v for k, v in settings.items() if k != "name"},
    )
    assert updated.status_code == 400, updated.text


@pytest.mark.parametrize(
    "query",
    [
        "/input_items?limit=-2600358597021039",
        "/input_items?limit=4294967296",
        "?stream=true&starting_after=99999999999999999999",
    ],
)
def test_a_stored_response_query_out_of_range_is_400(gateway: FuzzHarness, query: str) -> None:
    response = _call(gateway, "GET", "/v1/responses/resp_none" + query)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] in ("limit", "starting_after")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/chat/completions",
            {
                "model": "gpt-test",
                "messages": [{"role": "user", "content": "hi"}],
                "tool_choice": {"type": "function", "function": 1},
            },
        ),
        (
            "/v1/responses",
            {
                "model": "gpt-test",
                "input": "hi",
                "tools": [{"type": "mcp", "server_label": "x", "defer_loading": []}],
            },
        ),
    ],
)
def test_a_body_the_upstream_refuses_is_its_400_not_a_5xx(
    gateway: FuzzHarness, path: str, body: dict[str, Any]
) -> None:
    """Shapes the gateway forwards as written (tool_choice, tools): the upstream's refusal is relayed."""
    response = _call(gateway, "POST", path, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
