"""OpenAI video job JSON (and multipart form) <-> `VideoParams` / `Video`."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson

from siraya.router.codec.errors import CodecError
from siraya.router.codec.fields import JsonObject, opt_int, opt_object, opt_str, require_object, require_str
from siraya.router.codec.routing import collect_extra_body, decode_routing, encode_extra_body, require_model
from siraya.router.codec.validate import invalid_seconds
from siraya.router.v1 import videos_pb2

__all__ = [
    "decode_video",
    "decode_video_form",
    "decode_video_request",
    "encode_video",
    "encode_video_request",
]

_KNOWN_KEYS = frozenset({"model", "prompt", "seconds", "size", "input_reference"})
_RESERVED = frozenset({"model", "prompt", "input_reference"})
_REFERENCE_KEYS = frozenset({"image_url", "file_id"})
_URL_PREFIXES = ("data:", "https://", "http://")
# Form fields that may hold JSON text, since a form value is always a string.
_JSON_FORM_KEYS = frozenset({"models", "provider", "extra_body", "input_reference"})
_FORM_BOOLS = {"true": True, "false": False}
# Magic numbers of the image types video models take, for uploads sent without a content type.
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


# --- requests ---------------------------------------------------------------------------------


def decode_video_request(body: JsonObject) -> videos_pb2.VideoParams:
    """Decode a client's JSON `POST /v1/videos` body (OpenAI's CreateVideoJsonBody + routing).

    Unlike OpenAI, `model` is required: the gateway routes on it. `input_reference` is
    `{"image_url": ...}`, `{"file_id": ...}`, or a bare data: (or http) URL string.
    """
    return _decode_params(body, None)


def decode_video_form(
    fields: Mapping[str, str], reference: tuple[bytes, str] | None
) -> videos_pb2.VideoParams:
    """Decode the multipart form the OpenAI SDKs send to `POST /v1/videos`.

    `fields` holds the text fields; iterating `items()` of a multidict yields repeated keys, which
    `name[]` fields need. `reference` is the uploaded `input_reference` file as (bytes, content type).
    The SDKs flatten `extra_body` objects into `provider[order][]`-style names, which are rebuilt
    here; `models`, `provider` and `extra_body` may also be sent as JSON text. Values are validated
    exactly as in `decode_video_request`.
    """
    body = _form_to_body(fields)
    if reference is not None and body.get("input_reference") is not None:
        raise CodecError(
            "Send 'input_reference' either as a file or as a reference, not both.", "input_reference"
        )
    return _decode_params(body, reference)


def encode_video_request(params: videos_pb2.VideoParams, upstream_model: str) -> JsonObject:
    """Build the JSON body for an OpenAI-compatible upstream's `POST /videos`.

    Uploaded reference bytes travel as a base64 data URL in `input_reference.image_url`.
    """
    body: JsonObject = {"model": upstream_model, "prompt": params.prompt}
    if params.HasField("seconds"):
        body["seconds"] = params.seconds
    if params.HasField("size"):
        body["size"] = params.size
    if params.HasField("input_reference"):
        body["input_reference"] = _encode_reference(params.input_reference)
    encode_extra_body(params.extra_body, body, _RESERVED)
    return body


def _decode_params(body: JsonObject, upload: tuple[bytes, str] | None) -> videos_pb2.VideoParams:
    # An empty prompt, a `seconds` that is no whole number and a reference that is not exactly one
    # thing are `check_video_params`'s to refuse.
    params = videos_pb2.VideoParams(model=require_model(body), prompt=require_str(body, "prompt"))
    seconds = _decode_seconds(body.get("seconds"))
    if seconds is not None:
        params.seconds = seconds
    size = opt_str(body, "size")
    if size is not None:
        params.size = size
    if upload is not None:
        _decode_upload(upload, params.input_reference)
    else:
        reference = body.get("input_reference")
        if reference is not None:
            _decode_reference(reference, params.input_reference)
    decode_routing(body, params.routing)
    collect_extra_body(body, _KNOWN_KEYS, params.extra_body)
    return params


def _decode_seconds(value: Any) -> str | None:
    """The string the proto holds: a JSON number becomes its digits (a fraction is kept as written,
    for the check to refuse)."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if type(value) in (int, float):
        return str(value)
    raise invalid_seconds()


def _decode_reference(value: Any, target: videos_pb2.ImageReference) -> None:
    if isinstance(value, str):
        if not value.startswith(_URL_PREFIXES):
            raise CodecError(
                "Invalid value for 'input_reference': a string must be a data: or http(s) URL.",
                "input_reference",
            )
        target.image_url = value
        return
    reference = require_object(value, "input_reference")
    for key in reference:
        if key not in _REFERENCE_KEYS:
            path = f"input_reference.{key}"
            raise CodecError(f"Unknown parameter: '{path}'.", path, "unknown_parameter")
    target.SetInParent()
    image_url = opt_str(reference, "image_url", "input_reference.image_url")
    if image_url is not None:
        target.image_url = image_url
    file_id = opt_str(reference, "file_id", "input_reference.file_id")
    if file_id is not None:
        target.file_id = file_id


def _decode_upload(upload: tuple[bytes, str], target: videos_pb2.ImageReference) -> None:
    data, mime_type = upload
    if not data:
        raise CodecError(
            "Invalid value for 'input_reference': the uploaded file is empty.", "input_reference"
        )
    target.data = data
    if not mime_type or mime_type == "application/octet-stream":
        mime_type = _sniff_mime_type(data) or mime_type
    if mime_type:
        target.mime_type = mime_type


def _sniff_mime_type(data: bytes) -> str | None:
    for magic, mime_type in _MAGIC:
        if data.startswith(magic):
            return mime_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _encode_reference(reference: videos_pb2.ImageReference) -> JsonObject:
    if reference.data:
        mime_type = reference.mime_type or "application/octet-stream"
        encoded = base64.b64encode(reference.data).decode("ascii")
        return {"image_url": f"data:{mime_type};base64,{encoded}"}
    if reference.HasField("image_url"):
        return {"image_url": reference.image_url}
    return {"file_id": reference.file_id}


# --- multipart forms --------------------------------------------------------------------------


def _form_to_body(fields: Mapping[str, str]) -> JsonObject:
    body: JsonObject = {}
    for key, value in fields.items():
        if "[" in key:
            _set_form_path(body, key, value)
        elif key in _JSON_FORM_KEYS and value.startswith(("{", "[")):
            try:
                body[key] = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise CodecError(f"Invalid value for '{key}': not valid JSON.", key) from None
        else:
            body[key] = value
    models = body.get("models")
    if isinstance(models, str):
        body["models"] = [models]
    provider = body.get("provider")
    if isinstance(provider, dict):
        _coerce_form_provider(provider)
    return body


def _set_form_path(body: JsonObject, key: str, value: str) -> None:
    """Rebuild `a[b][c]=v` and `a[b][]=v` (the SDKs' "brackets" form encoding) into nested JSON."""
    name, _, rest = key.partition("[")
    if not name or not rest.endswith("]"):
        raise CodecError(f"Malformed form field name '{key}'.", key)
    path = [name, *rest[:-1].split("][")]
    node: JsonObject = body
    for depth, part in enumerate(path[:-1]):
        last = depth == len(path) - 2
        appends = path[depth + 1] == ""
        if not part or (appends and not last):
            raise CodecError(f"Unsupported form field name '{key}': arrays may only hold strings.", key)
        child = node.setdefault(part, [] if appends else {})
        if appends:
            if not isinstance(child, list):
                raise CodecError(f"Form field '{key}' conflicts with another field.", key)
            child.append(value)
            return
        if not isinstance(child, dict):
            raise CodecError(f"Form field '{key}' conflicts with another field.", key)
        node = child
    node[path[-1]] = value


def _coerce_form_provider(provider: JsonObject) -> None:
    # Form values are strings; routing preferences are typed. JSON-text values are already typed.
    for key in ("allow_fallbacks", "require_parameters"):
        value = provider.get(key)
        if isinstance(value, str):
            if value not in _FORM_BOOLS:
                path = f"provider.{key}"
                raise CodecError(f"Invalid value for '{path}': expected 'true' or 'false'.", path)
            provider[key] = _FORM_BOOLS[value]
    max_price = provider.get("max_price")
    if isinstance(max_price, dict):
        for key, value in max_price.items():
            if isinstance(value, str):
                try:
                    max_price[key] = float(value)
                except ValueError:
                    path = f"provider.max_price.{key}"
                    raise CodecError(f"Invalid value for '{path}': expected a number.", path) from None


# --- video jobs -------------------------------------------------------------------------------


def decode_video(body: JsonObject) -> videos_pb2.Video:
    """Decode an upstream's VideoResource. `provider` is the gateway's to set."""
    video = videos_pb2.Video(
        id=require_str(body, "id"),
        object="video",
        model=opt_str(body, "model") or "",
        status=opt_str(body, "status") or "",
        progress=_decode_progress(body.get("progress")),
        created_at=opt_int(body, "created_at") or 0,
        size=opt_str(body, "size") or "",
        seconds=_decode_seconds(body.get("seconds")) or "",
    )
    for key in ("completed_at", "expires_at"):
        timestamp = opt_int(body, key)
        if timestamp is not None:
            setattr(video, key, timestamp)
    for key in ("prompt", "remixed_from_video_id"):
        text = opt_str(body, key)
        if text is not None:
            setattr(video, key, text)
    error = opt_object(body, "error")
    if error is not None:
        video.error.SetInParent()
        video.error.code = opt_str(error, "code", "error.code") or ""
        video.error.message = opt_str(error, "message", "error.message") or ""
    return video


def encode_video(video: videos_pb2.Video) -> bytes:
    """Encode OpenAI's VideoResource bytes, with OpenAI's key order and nulls; `provider` last when set."""
    out: JsonObject = {
        "id": video.id,
        "object": "video",
        "created_at": video.created_at,
        "status": video.status,
        "completed_at": video.completed_at if video.HasField("completed_at") else None,
        "error": (
            {"code": video.error.code, "message": video.error.message} if video.HasField("error") else None
        ),
        "expires_at": video.expires_at if video.HasField("expires_at") else None,
        "model": video.model,
        "progress": video.progress,
        "prompt": video.prompt if video.HasField("prompt") else None,
        "remixed_from_video_id": (
            video.remixed_from_video_id if video.HasField("remixed_from_video_id") else None
        ),
        "seconds": video.seconds,
        "size": video.size,
    }
    if video.HasField("provider"):
        out["provider"] = video.provider
    return orjson.dumps(out)


def _decode_progress(value: Any) -> int:
    if value is None:
        return 0
    # Some upstreams report fractional percentages; OpenAI's is an integer.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise CodecError("Invalid value for 'progress': expected a number from 0 to 100.", "progress")
    return int(value)
