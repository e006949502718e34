"""What each upstream attempt of a request consumed at its provider: the ledger's operator spend.

The key pays for the attempt that served it; the operator pays the providers for every attempt that
ran. Before a request is settled or failed, the gateway turns each attempt's row (its answer, a
stream's first item or its error, kept by server/observability/attempts.py) into a Consumption, and
accounting prices each at its own deployment's price (`upstream_cost`):

    the attempt that served             what the request consumed: the same tokens the key pays for
                                        (a stream cut or cancelled: the prompt plus what it produced,
                                        the text no usage covered counted with the tokenizer)
    answered, but lost the hedge race   its own answer's usage
    streamed, then lost the race        its first item's usage; else its prompt, counted, plus the
                                        text of that item, counted
    cancelled before any answer         its prompt, counted with the tokenizer: the provider read it
    (a hedge that lost, a client that   (whatever it generated before it noticed is not known)
    went away, the gateway's timeout)
    failed                              the usage its error body reported (`billed_usage`), else
                                        nothing: a refused or failed call is not billed

Rows that were never attempts' (a request without any) are left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server.accounts.metering import Consumption, Demand
from server.errors import GatewayError, RequestTimeout
from server.gateway_usage import count_prompt, count_stream_text, usage_consumption_json

__all__ = ["spend_stream", "spend_unary"]

_SPENT, _ROUTE, _OUTCOME = 7, 8, 5


class _Prompt:
    """The request's prompt, counted once with the tokenizer however many attempts need it."""

    __slots__ = ("_demand", "_tokens")

    def __init__(self, demand: Demand) -> None:
        self._demand = demand
        self._tokens: int | None = None

    def consumption(self) -> Consumption:
        if self._tokens is None:
            counted = Consumption()
            count_prompt(counted, self._demand)
            self._tokens = counted.prompt_tokens
        return Consumption(prompt_tokens=self._tokens, counted=True)


def spend_unary(
    rows: list[list[Any]] | None,
    result: Any,
    consumption: Consumption | None,
    consumed: Callable[[Any, Demand], Consumption],
    demand: Demand,
) -> None:
    """Each attempt's consumption for a unary request that answered with `result` (whose
    `consumption` the key is charged), or failed (`result` None)."""
    if rows is None:
        return
    if len(rows) == 1 and result is not None and rows[0][_SPENT] is result:
        rows[0][_SPENT] = consumption  # the common case: one attempt, and it served
        return
    prompt = _Prompt(demand)
    for row in rows:
        spent = row[_SPENT]
        if result is not None and spent is result:
            row[_SPENT] = consumption
        else:
            row[_SPENT] = _spent(row, prompt, lambda answer: consumed(answer, demand))


def spend_stream(
    rows: list[list[Any]] | None,
    route: Any,
    total: Consumption,
    reported: bool,
    fold: Callable[[Any, Consumption], Any],
    demand: Demand,
) -> None:
    """Each attempt's consumption for a stream `route` served (None: none did) with `total` so far;
    `reported`: the upstream reported usage (else the prompt in `total` is counted here, once). The
    text in `total` that no usage covered is counted here too, with the tokenizer."""
    if route is not None:
        if not reported and not total.counted and not total.prompt_reported:
            count_prompt(total, demand)
        count_stream_text(total)
    if rows is None:
        return
    served: list[Any] | None = None
    if route is not None:
        for row in reversed(rows):  # a retry of the same route: the last one is what served
            if row[_ROUTE] is route:
                served = row
                break
    if served is not None and len(rows) == 1:
        served[_SPENT] = total  # the common case: one attempt, and it served
        return
    prompt = _Prompt(demand)

    def first_item(item: Any) -> Consumption:
        spent = Consumption()
        fold(item, spent)
        count_stream_text(spent)
        if not spent.prompt_tokens:
            spent.prompt_tokens, spent.counted = prompt.consumption().prompt_tokens, True
        return spent

    for row in rows:
        if row is served:
            row[_SPENT] = total
        else:
            row[_SPENT] = _spent(row, prompt, first_item)


def _spent(row: list[Any], prompt: _Prompt, read: Callable[[Any], Consumption]) -> Consumption | None:
    """What one attempt that did not serve the request consumed (None: nothing the provider bills)."""
    spent = row[_SPENT]
    if isinstance(spent, Consumption):
        return spent
    if isinstance(spent, GatewayError):
        if spent.billed_usage is not None:
            return usage_consumption_json(spent.billed_usage)
        if isinstance(spent, RequestTimeout) and spent.upstream_status is None:
            return prompt.consumption()  # the gateway gave up on a call the provider was running
        return None
    if spent is None:
        return prompt.consumption() if row[_OUTCOME] == "cancelled" else None
    if isinstance(spent, BaseException):
        return None
    return read(spent)
