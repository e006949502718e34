"""`observability.store_bodies`: with it, each request's prompt and answer text is kept with its ledger
record and shown by GET /v1/generation(s) and the console's log; without it (the default), nothing of
either is stored anywhere in the database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from server.accounts.backends import DATABASE_FILE
from tests.e2e.console_harness import ADMIN_KEY, ConsoleHarness

STORE_BODIES = "observability:\n  store_bodies: true\n"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# Words nothing else in a test run says: where they appear, a prompt or an answer was stored.
PROMPT_WORD = "PINEAPPLEQUOKKA"


@pytest.fixture(
    scope="module",
    params=[("stored", True), ("stored", False), ("not stored", True)],
    ids=["stored-in_process", "stored-grpc_hop", "not_stored"],
)
def gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleHarness]:
    stored, in_process = request.param
    harness = ConsoleHarness(
        Path(tmp_path_factory.mktemp("store-bodies")),
        extra_config=STORE_BODIES if stored == "stored" else "",
        in_process=in_process,
    ).start()
    try:
        yield harness
    finally:
        harness.stop()


def stores_bodies(gw: ConsoleHarness) -> bool:
    return gw.extra_config == STORE_BODIES


def requests_of_every_kind(gw: ConsoleHarness, secret: str, word: str) -> dict[str, tuple[str, str]]:
    """One request per path the gateway answers by: {kind: (request id, the answer the client saw)}."""
    made: dict[str, tuple[str, str]] = {}
    client = gw.client(secret)
    raw = client.chat.completions.with_raw_response.create(
        model="solo-beta",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"unary {word}"}],
    )
    made["chat"] = (raw.headers["x-request-id"], raw.parse().choices[0].message.content or "")
    with client.chat.completions.with_streaming_response.create(
        model="solo-beta", messages=[{"role": "user", "content": f"streamed {word}"}], stream=True
    ) as streamed:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in streamed.parse() if chunk.choices)
        made["chat stream"] = (streamed.headers["x-request-id"], text)
    messages = anthropic.Anthropic(base_url=gw.root_url, api_key=secret, max_retries=0)
    raw_message = messages.messages.with_raw_response.create(
        model="solo-beta", max_tokens=64, messages=[{"role": "user", "content": f"messages {word}"}]
    )
    message = raw_message.parse()
    made["messages"] = (raw_message.headers["x-request-id"], message.content[0].text)  # type: ignore[union-attr]
    with messages.messages.stream(
        model="solo-beta", max_tokens=64, messages=[{"role": "user", "content": f"messages streamed {word}"}]
    ) as live:
        text = "".join(live.text_stream)
        made["messages stream"] = (live.response.headers["x-request-id"], text)
    return made


def generation(gw: ConsoleHarness, secret: str, request_id: str) -> dict[str, Any]:
    response = gw.get("/generation", secret, id=request_id)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_prompts_and_answers_are_stored_only_when_asked(gw: ConsoleHarness) -> None:
    key_id, secret = gw.new_key("bodies")
    made = requests_of_every_kind(gw, secret, PROMPT_WORD)
    listed = {record["id"]: record for record in gw.get("/generations", key=key_id).json()["data"]}
    assert set(listed) == {request_id for request_id, _ in made.values()}
    for kind, (request_id, answer) in made.items():
        record = generation(gw, secret, request_id)
        assert listed[request_id]["prompt_text"] == record["prompt_text"], kind
        if not stores_bodies(gw):
            assert (record["prompt_text"], record["answer_text"]) == (None, None), kind
            continue
        assert PROMPT_WORD in answer, kind  # the fake echoes the prompt
        assert record["answer_text"] == answer, kind
        assert record["prompt_text"].startswith(("system: ", "user: ")), kind
        assert record["prompt_text"].endswith(PROMPT_WORD), kind
    if stores_bodies(gw):
        chat = generation(gw, secret, made["chat"][0])
        assert chat["prompt_text"] == f"system: Be brief.\nuser: unary {PROMPT_WORD}"
        assert generation(gw, secret, made["messages"][0])["prompt_text"] == f"user: messages {PROMPT_WORD}"
    else:
        # Nothing of the prompt or the answer reached the database: not the file, not its journal.
        database = Path(gw.tmp_dir / "data")
        files = [path for path in database.iterdir() if path.name.startswith(DATABASE_FILE)]
        assert files and all(PROMPT_WORD.encode() not in path.read_bytes() for path in files)


def test_the_console_log_shows_them_when_stored(gw: ConsoleHarness) -> None:
    key_id, secret = gw.new_key("console-bodies")
    request_id, answer = requests_of_every_kind(gw, secret, "KIWIWOMBAT")["chat"]
    with httpx.Client(base_url=gw.root_url, follow_redirects=False, timeout=10) as browser:
        token = CSRF.search(browser.get("/console/login").text)
        assert token is not None
        browser.post("/console/login", data={"key": ADMIN_KEY, "csrf_token": token.group(1)})
        page = browser.get("/console/logs", params={"key": key_id}).text
    entry = page[page.index(f'data-request-id="{request_id}"') :]
    entry = entry[: entry.index("</details>")]
    if stores_bodies(gw):
        assert (
            '<pre class="prompt-text" tabindex="0">system: Be brief.\nuser: unary KIWIWOMBAT</pre>' in entry
        )
        assert f'<pre class="answer-text" tabindex="0">{answer}</pre>' in entry
    else:
        assert "prompt-text" not in entry and "KIWIWOMBAT" not in entry
