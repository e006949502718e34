"""A budget in a JSON body and in a reply: `{"limit": 50, "period": "day", "reset": "calendar"}`.

`limit` is USD per period; `period` is day, week or month; `reset` is calendar (the default: the
period from its UTC boundary) or rolling (the trailing period). A reply adds the window now: spent,
reserved, remaining (negative after an overrun), window_start and resets_at (null when rolling).
"""

from __future__ import annotations

from typing import Any

from http_bridge.body_fields import reject_unknown_fields
from server.errors import InvalidRequest
from siraya.router.v1 import admin_pb2

__all__ = ["BUDGET_FIELDS", "budget_json", "budget_spec"]

BUDGET_FIELDS = ("limit", "period", "reset")
_PERIODS = {
    "day": admin_pb2.BUDGET_PERIOD_DAY,
    "week": admin_pb2.BUDGET_PERIOD_WEEK,
    "month": admin_pb2.BUDGET_PERIOD_MONTH,
}
_RESETS = {"calendar": admin_pb2.BUDGET_RESET_CALENDAR, "rolling": admin_pb2.BUDGET_RESET_ROLLING}
_PERIOD_NAMES = {value: name for name, value in _PERIODS.items()}
_RESET_NAMES = {value: name for name, value in _RESETS.items()}


def budget_spec(value: Any, param: str = "budget") -> admin_pb2.Budget:
    """The Budget a body's `budget` object sets, or a 400 naming what is wrong in it."""
    if not isinstance(value, dict):
        raise InvalidRequest(
            f'\'{param}\' must be an object like {{"limit": 50, "period": "day", "reset": "calendar"}},'
            " or null for none.",
            param=param,
            code="invalid_type",
        )
    reject_unknown_fields(value, BUDGET_FIELDS, f"'{param}'")
    limit = value.get("limit")
    if isinstance(limit, bool) or not isinstance(limit, (int, float)):
        raise InvalidRequest(
            f"'{param}.limit' must be a number: USD per period.", param=f"{param}.limit", code="invalid_type"
        )
    period = value.get("period")
    if period not in _PERIODS:
        raise InvalidRequest(
            f"'{param}.period' must be one of: {', '.join(_PERIODS)}.",
            param=f"{param}.period",
            code="invalid_value",
        )
    reset = value.get("reset", "calendar")
    if reset not in _RESETS:
        raise InvalidRequest(
            f"'{param}.reset' must be one of: {', '.join(_RESETS)}.",
            param=f"{param}.reset",
            code="invalid_value",
        )
    return admin_pb2.Budget(limit=float(limit), period=_PERIODS[period], reset=_RESETS[reset])


def budget_json(budget: admin_pb2.Budget, status: admin_pb2.BudgetStatus | None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "limit": budget.limit,
        "period": _PERIOD_NAMES.get(budget.period, "month"),
        "reset": _RESET_NAMES.get(budget.reset, "calendar"),
    }
    if status is not None:
        found.update(
            spent=status.spent,
            reserved=status.reserved,
            remaining=status.remaining,
            window_start=status.window_start,
            resets_at=status.resets_at if status.HasField("resets_at") else None,
        )
    return found
