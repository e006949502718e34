"""Veo video jobs <-> the Gemini API's long-running operations (pure translation).

create: POST `models/<m>:predictLongRunning` with `instances[{prompt, image?}]` and
`parameters{durationSeconds, aspectRatio, resolution?}`; the answer is an operation
`{"name": "models/<m>/operations/<id>"}`. poll: GET `<name>` until `done`, then either `error`
(failed) or `response.generateVideoResponse.generatedSamples[0].video.uri` (completed), a file
URL that is downloaded with the API key. An operation reports no progress, so a running job is
"in_progress" at 0 until it is done.

The job id handed to the gateway is url-safe: base64url of a small JSON holding the operation
name plus what the operation itself does not echo (creation time, seconds, size), so `get_video`
can answer with the same VideoResource fields `create_video` did.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

from server.errors import InvalidRequest, NotFound
from server.providers.gemini.media import decode_base64
from server.providers.gemini.response import MalformedResponse
from server.providers.remote_media import Media, base64_text
from siraya.router.codec.fields import struct_to_dict
from siraya.router.v1 import videos_pb2

__all__ = [
    "DEFAULT_SECONDS",
    "VIDEO_RETENTION_SECONDS",
    "VideoFile",
    "VideoRef",
    "decode_video_id",
    "encode_video_id",
    "new_video",
    "operation_name",
    "video_file",
    "video_from_operation",
    "video_request",
]

DEFAULT_SECONDS = "8"
DEFAULT_SIZE = "1280x720"
# Google keeps generated videos for two days.
VIDEO_RETENTION_SECONDS = 2 * 24 * 3600

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class VideoRef:
    """What the gateway stores as the upstream id of one Veo job."""

    operation: str
    created_at: int
    seconds: str
    size: str


@dataclass(frozen=True, slots=True)
class VideoFile:
    """Where the rendered video is: a URI to download, or bytes inlined in the operation."""

    uri: str | None
    data: bytes | None
    content_type: str


def encode_video_id(ref: VideoRef) -> str:
    raw = orjson.dumps({"op": ref.operation, "t": ref.created_at, "s": ref.seconds, "z": ref.size})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_video_id(video_id: str) -> VideoRef:
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(video_id + "=" * (-len(video_id) % 4)))
        return VideoRef(str(raw["op"]), int(raw["t"]), str(raw["s"]), str(raw["z"]))
    except (binascii.Error, ValueError, orjson.JSONDecodeError, KeyError, TypeError):
        raise NotFound(
            f"No video found with id '{video_id}'.", param="video_id", code="video_not_found"
        ) from None


def _shape(size: str) -> tuple[str, str | None]:
    """(aspectRatio, resolution or None for the default 720p) for an OpenAI "WxH" size."""
    width, x, height = size.lower().partition("x")
    if not x or not width.isdigit() or not height.isdigit():
        raise InvalidRequest(f"Invalid size '{size}': expected WIDTHxHEIGHT.", param="size")
    w, h = int(width), int(height)
    return ("16:9" if w >= h else "9:16"), ("1080p" if min(w, h) >= 1080 else None)


def video_request(params: videos_pb2.VideoParams, image: Media | None) -> JsonObject:
    """The `predictLongRunning` body; `image` is the fetched input_reference, if any."""
    instance: JsonObject = {"prompt": params.prompt}
    if image is not None:
        instance["image"] = {
            "bytesBase64Encoded": base64_text(image),
            "mimeType": image.media_type,
        }
    parameters: JsonObject = {}
    if params.HasField("seconds"):
        if not params.seconds.isdigit():
            raise InvalidRequest(f"Invalid seconds '{params.seconds}'.", param="seconds")
        parameters["durationSeconds"] = int(params.seconds)
    if params.HasField("size"):
        ratio, resolution = _shape(params.size)
        parameters["aspectRatio"] = ratio
        if resolution:
            parameters["resolution"] = resolution
    parameters.update(struct_to_dict(params.extra_body))
    body: JsonObject = {"instances": [instance]}
    if parameters:
        body["parameters"] = parameters
    return body


def operation_name(body: Any) -> str:
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name:
        raise MalformedResponse("the long-running operation has no name")
    return name


def new_video(ref: VideoRef, video_id: str, params: videos_pb2.VideoParams) -> videos_pb2.Video:
    video = _base(ref, video_id)
    video.status = "queued"
    video.prompt = params.prompt
    return video


def _base(ref: VideoRef, video_id: str) -> videos_pb2.Video:
    return videos_pb2.Video(
        id=video_id,
        object="video",
        created_at=ref.created_at,
        expires_at=ref.created_at + VIDEO_RETENTION_SECONDS,
        seconds=ref.seconds,
        size=ref.size,
    )


def _samples(operation: JsonObject) -> tuple[list[Any], list[str]]:
    response = operation.get("response")
    generated = response.get("generateVideoResponse") if isinstance(response, dict) else None
    if not isinstance(generated, dict):
        raise MalformedResponse("the finished operation has no generateVideoResponse")
    samples = generated.get("generatedSamples") or []
    reasons = [str(r) for r in generated.get("raiMediaFilteredReasons") or []]
    return (samples if isinstance(samples, list) else []), reasons


def video_from_operation(operation: Any, ref: VideoRef, video_id: str) -> videos_pb2.Video:
    """The VideoResource for one poll of the operation."""
    if not isinstance(operation, dict):
        raise MalformedResponse("the operation is not an object")
    video = _base(ref, video_id)
    if not operation.get("done"):
        video.status = "in_progress"
        return video
    error = operation.get("error")
    if isinstance(error, dict):
        video.status = "failed"
        video.error.code = str(error.get("status") or error.get("code") or "generation_failed")
        video.error.message = str(error.get("message") or "The video generation failed.")
        return video
    samples, reasons = _samples(operation)
    if not samples:
        video.status = "failed"
        video.error.code = "content_policy_violation"
        video.error.message = " ".join(reasons) or "The provider returned no video."
        return video
    video.status = "completed"
    video.progress = 100
    return video


def video_file(operation: Any) -> VideoFile:
    """The first rendered sample of a completed operation."""
    if not isinstance(operation, dict) or not operation.get("done") or operation.get("error"):
        raise InvalidRequest("The video is not ready for download.", param="video_id", code="video_not_ready")
    samples, _ = _samples(operation)
    sample = samples[0] if samples and isinstance(samples[0], dict) else None
    video = sample.get("video") if sample else None
    if not isinstance(video, dict):
        raise InvalidRequest(
            "The video has no downloadable content.", param="video_id", code="video_not_ready"
        )
    content_type = (
        str(video.get("mimeType") or sample.get("encoding") or "video/mp4") if sample else "video/mp4"
    )
    uri = video.get("uri")
    if isinstance(uri, str) and uri:
        return VideoFile(uri=uri, data=None, content_type=content_type)
    encoded = video.get("encodedVideo")
    if isinstance(encoded, str) and encoded:
        return VideoFile(uri=None, data=decode_base64(encoded), content_type=content_type)
    raise MalformedResponse("the generated sample has neither a uri nor encoded bytes")
