"""Typed readers for decoded JSON objects and fast Struct <-> dict conversion.

Every reader names the parameter path in its error, so a 400 can say which field was wrong.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2

from siraya.router.codec.errors import CodecError

JsonObject = dict[str, Any]


def _type_error(param: str, expected: str) -> CodecError:
    return CodecError(f"Invalid type for '{param}': expected {expected}.", param, "invalid_type")


def missing_parameter(param: str) -> CodecError:
    return CodecError(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def require_object(value: Any, param: str) -> JsonObject:
    if not isinstance(value, dict):
        raise _type_error(param, "an object")
    return value


def require_list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise _type_error(param, "an array")
    return value


def require_str(body: JsonObject, key: str, param: str | None = None) -> str:
    value = body.get(key)
    path = param or key
    if value is None:
        raise CodecError(f"Missing required parameter: '{path}'.", path, "missing_required_parameter")
    if not isinstance(value, str):
        raise _type_error(path, "a string")
    return value


def opt_str(body: JsonObject, key: str, param: str | None = None) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _type_error(param or key, "a string")


def opt_bool(body: JsonObject, key: str, param: str | None = None) -> bool | None:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise _type_error(param or key, "a boolean")


def opt_int(body: JsonObject, key: str, param: str | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _type_error(param or key, "an integer")
    return value


def opt_float(body: JsonObject, key: str, param: str | None = None) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _type_error(param or key, "a number")
    return float(value)


def opt_object(body: JsonObject, key: str, param: str | None = None) -> JsonObject | None:
    value = body.get(key)
    if value is None:
        return None
    return require_object(value, param or key)


def opt_list(body: JsonObject, key: str, param: str | None = None) -> list[Any] | None:
    value = body.get(key)
    if value is None:
        return None
    return require_list(value, param or key)


def str_map(body: JsonObject, key: str) -> dict[str, str]:
    value = opt_object(body, key)
    if not value:
        return {}
    for k, v in value.items():
        if not isinstance(v, str):
            raise _type_error(f"{key}.{k}", "a string")
    return value


def fill_struct(target: struct_pb2.Struct, value: JsonObject) -> None:
    """Copy a JSON object into a Struct field in place (C++ `update`, no json_format)."""
    target.update(value)


def struct_to_dict(struct: struct_pb2.Struct) -> JsonObject:
    return {key: value_to_python(value) for key, value in struct.fields.items()}


def list_to_python(values: struct_pb2.ListValue) -> list[Any]:
    return [value_to_python(v) for v in values.values]


def value_to_python(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        # JSON Schema bounds and similar round-trip as integers, as clients wrote them.
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return list_to_python(value.list_value)
    return None


def fill_value(target: struct_pb2.Value, python_value: Any) -> None:
    """Set a Value field from any JSON value."""
    if python_value is None:
        target.null_value = struct_pb2.NULL_VALUE
    elif isinstance(python_value, bool):
        target.bool_value = python_value
    elif isinstance(python_value, (int, float)):
        target.number_value = python_value
    elif isinstance(python_value, str):
        target.string_value = python_value
    elif isinstance(python_value, dict):
        target.struct_value.update(python_value)
    elif isinstance(python_value, list):
        target.list_value.extend(python_value)
    else:
        raise CodecError(f"Unsupported JSON value of type {type(python_value).__name__}.")
