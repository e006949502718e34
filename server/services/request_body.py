"""Params decoded from the JSON body a request carries beside them (the REST body as written)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import orjson

from server.errors import InvalidRequest
from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import JsonObject

Params = TypeVar("Params")


def params_from_body(raw: bytes, decode: Callable[[JsonObject], Params], field: str) -> Params:
    """`decode` of the JSON object in `raw` (the request's `field`); InvalidRequest when it is not one
    or does not decode."""
    try:
        body = orjson.loads(raw)
        if not isinstance(body, dict):
            raise CodecError("The request body must be a JSON object.", None, "invalid_json")
        return decode(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest(f"'{field}' is not valid JSON.", param=field, code="invalid_json") from None
    except RecursionError:
        raise InvalidRequest(
            f"'{field}' nests arrays and objects too deep.", param=field, code="nesting_too_deep"
        ) from None
    except CodecError as error:
        raise InvalidRequest(error.message, param=error.param, code=error.code) from None
