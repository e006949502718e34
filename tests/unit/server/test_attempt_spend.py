"""What each attempt of a request consumed at its provider (server/attempt_spend.py), from the rows the
attempt observer keeps: the rule for each way an attempt can end."""

from __future__ import annotations

from typing import Any

from server.accounts.metering import Consumption, Demand
from server.attempt_spend import spend_stream, spend_unary
from server.errors import RequestTimeout, UpstreamError
from server.gateway_usage import chat_demand, count_prompt, fold_chunk_json
from siraya.router.codec.chat_request import decode_chat_request

PARAMS = decode_chat_request(
    {"model": "m", "messages": [{"role": "user", "content": "How much did the attempts that lost cost?"}]}
)
DEMAND: Demand = chat_demand(PARAMS)


def _prompt() -> int:
    counted = Consumption()
    count_prompt(counted, DEMAND)
    return counted.prompt_tokens


def _row(outcome: str | None, spent: Any, route: object = None) -> list[Any]:
    return ["p", "m", "u", 0.0, 0.1, outcome, None, spent, route if route is not None else object()]


def _answer_usage(answer: dict[str, Any], demand: Demand) -> Consumption:
    usage = answer["usage"]
    return Consumption(prompt_tokens=usage["prompt_tokens"], completion_tokens=usage["completion_tokens"])


def test_the_attempt_that_served_spent_what_the_key_pays() -> None:
    answer = {"usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    served = Consumption(prompt_tokens=3, completion_tokens=4)
    rows = [_row("ok", answer)]
    spend_unary(rows, answer, served, _answer_usage, DEMAND)
    assert rows[0][7] is served


def test_unary_attempts_that_did_not_serve() -> None:
    served_answer = {"usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    lost_answer = {"usage": {"prompt_tokens": 30, "completion_tokens": 40}}
    billed = UpstreamError("failed")
    billed.billed_usage = {"prompt_tokens": 9, "completion_tokens": 1}
    unbilled = UpstreamError("failed")
    gave_up = RequestTimeout("slow")  # the gateway's own limit: the provider was still running it
    upstream_timeout = RequestTimeout("slow")
    upstream_timeout.upstream_status = 408
    rows = [
        _row("error", billed),
        _row("error", unbilled),
        _row("cancelled", None),  # a hedge cancelled before it answered
        _row("ok", lost_answer),  # a hedge that answered as the winner did, and lost
        _row("error", gave_up),
        _row("error", upstream_timeout),
        _row("ok", served_answer),
    ]
    served = Consumption(prompt_tokens=3, completion_tokens=4)
    spend_unary(rows, served_answer, served, _answer_usage, DEMAND)
    spent = [row[7] for row in rows]
    assert (spent[0].prompt_tokens, spent[0].completion_tokens, spent[0].counted) == (9, 1, False)
    assert spent[1] is None and spent[5] is None
    assert spent[2] == Consumption(prompt_tokens=_prompt(), counted=True) == spent[4]
    assert (spent[3].prompt_tokens, spent[3].completion_tokens) == (30, 40)
    assert spent[6] is served


def test_a_unary_request_that_failed_has_no_served_attempt() -> None:
    rows = [_row("cancelled", None), _row("error", UpstreamError("down"))]
    spend_unary(rows, None, None, _answer_usage, DEMAND)
    assert rows[0][7] == Consumption(prompt_tokens=_prompt(), counted=True) and rows[1][7] is None


def test_stream_attempts() -> None:
    route = object()
    first_chunk = {"choices": [{"index": 0, "delta": {"content": "Hello there, operator"}}]}
    total = Consumption(prompt_tokens=12, completion_tokens=40)
    rows = [
        _row("error", UpstreamError("down"), route),  # the same route, tried first: failed before any item
        _row("cancelled", first_chunk),  # a hedge that streamed its first item, then lost
        _row("cancelled", None),  # a hedge that never streamed
        _row(None, first_chunk, route),  # the one that serves, still running
    ]
    spend_stream(rows, route, total, True, fold_chunk_json, DEMAND)
    assert rows[0][7] is None
    loser = rows[1][7]
    assert loser.prompt_tokens == _prompt() and loser.counted and loser.completion_tokens > 0
    assert rows[2][7] == Consumption(prompt_tokens=_prompt(), counted=True)
    assert rows[3][7] is total and total.prompt_tokens == 12, "reported usage is never recounted"


def test_a_stream_without_usage_has_its_prompt_counted_once() -> None:
    route = object()
    total = Consumption(completion_tokens=5)
    rows = [_row(None, {"choices": []}, route)]
    spend_stream(rows, route, total, False, fold_chunk_json, DEMAND)
    assert rows[0][7] is total and (total.prompt_tokens, total.counted) == (_prompt(), True)
    spend_stream(rows, route, total, False, fold_chunk_json, DEMAND)
    assert total.prompt_tokens == _prompt()
