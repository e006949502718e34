"""The rules the admin API's bodies share (keys and teams): settings by name, a required name on
create, at least one setting on update and a name that cannot be removed, and numbers that fit the
proto field they go into (a value too wide is a 400, never a 500 from the encoder)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import field_mask_pb2

from http_bridge.body_fields import reject_unknown_fields
from server.errors import InvalidRequest

__all__ = ["new_settings", "optional_name", "optional_number", "settings_mask"]


def optional_number(body: dict[str, Any], name: str, *, bits: int) -> Any:
    """`body[name]`: a number, or with `bits` an integer that fits a proto field of that width."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int if bits else (int, float)):
        raise InvalidRequest(
            f"'{name}' must be {'an integer' if bits else 'a number'}.", param=name, code="invalid_type"
        )
    if bits and not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise InvalidRequest(f"'{name}' is out of range.", param=name, code="invalid_value")
    return value


def optional_name(body: dict[str, Any]) -> str | None:
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidRequest("'name' must be a string.", param="name", code="invalid_type")
    return name


def new_settings(body: dict[str, Any], fields: Sequence[str], what: str) -> None:
    """A create body: only known settings, and a name."""
    reject_unknown_fields(body, fields, f"a {what}'s settings")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"A {what} needs a 'name'.", param="name", code="missing_required_parameter")


def settings_mask(body: dict[str, Any], fields: Sequence[str], what: str) -> field_mask_pb2.FieldMask:
    """An update body's mask: only known settings, at least one, and the name kept."""
    reject_unknown_fields(body, fields, f"a {what}'s settings")
    if not body:
        raise InvalidRequest(
            f"Name at least one setting to change: {', '.join(fields)}.", code="missing_required_parameter"
        )
    if "name" in body and not body["name"]:
        raise InvalidRequest(f"A {what}'s 'name' cannot be removed.", param="name", code="invalid_value")
    return field_mask_pb2.FieldMask(paths=[field for field in fields if field in body])
