"""Embeddings, images and Veo video jobs <-> the Gemini API's JSON (pure translation).

- embeddings: `models/<m>:batchEmbedContents` with one request per input, each naming the model
  as "models/<m>" with `content.parts[0].text` and `outputDimensionality` <- dimensions. Gemini
  embeds text only, so token-id inputs are decoded to their text (cl100k_base, see
  embedding_input.py). Gemini reports no token usage for embeddings, so usage is zero unless a
  `usageMetadata` comes back.
- images: Imagen models (`imagen-*`) through `models/<m>:predict` with `instances[{prompt}]` and
  `parameters{sampleCount, aspectRatio, outputOptions}`; other models through generateContent with
  `responseModalities: ["TEXT", "IMAGE"]`, each inlineData image part a `b64_json`. Sizes map to
  the nearest aspect ratio the model family accepts. Only b64_json can be returned.
- videos: Veo through `models/<m>:predictLongRunning`, see `video.py`.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from server.errors import InvalidRequest
from server.providers.embedding_input import embedding_texts
from server.providers.gemini.response import MalformedResponse
from siraya.router.codec.fields import struct_to_dict
from siraya.router.v1 import embeddings_pb2, images_pb2

__all__ = [
    "GEMINI_IMAGE_RATIOS",
    "IMAGEN_RATIOS",
    "aspect_ratio",
    "decode_base64",
    "embed_request",
    "embedding_list",
    "gemini_image_request",
    "images_from_gemini",
    "images_from_imagen",
    "imagen_request",
    "is_imagen",
    "model_path",
]

JsonObject = dict[str, Any]

IMAGEN_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
GEMINI_IMAGE_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
_OUTPUT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}
_EMBED_KEYS = {"task_type": "taskType", "output_dimensionality": "outputDimensionality"}


def model_path(upstream_model: str) -> str:
    """`models/<m>`, the resource name every Gemini method takes."""
    return (
        upstream_model
        if upstream_model.startswith(("models/", "tunedModels/"))
        else f"models/{upstream_model}"
    )


# -- embeddings -------------------------------------------------------------------------------


def embed_request(params: embeddings_pb2.EmbeddingParams, upstream_model: str) -> JsonObject:
    texts = embedding_texts(params)
    extra = {_EMBED_KEYS.get(k, k): v for k, v in struct_to_dict(params.extra_body).items()}
    model = model_path(upstream_model)
    requests: list[JsonObject] = []
    for text in texts:
        request: JsonObject = {"model": model, "content": {"parts": [{"text": text}]}, **extra}
        if params.HasField("dimensions"):
            request["outputDimensionality"] = params.dimensions
        requests.append(request)
    return {"requests": requests}


def embedding_list(body: Any, upstream_model: str, expected: int) -> embeddings_pb2.EmbeddingList:
    if not isinstance(body, dict) or not isinstance(body.get("embeddings"), list):
        raise MalformedResponse("the response has no embeddings array")
    embeddings = body["embeddings"]
    if len(embeddings) != expected:
        raise MalformedResponse(f"{len(embeddings)} embeddings came back for {expected} inputs")
    result = embeddings_pb2.EmbeddingList(object="list", model=upstream_model)
    for index, item in enumerate(embeddings):
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(values, list):
            raise MalformedResponse("an embedding has no values")
        result.data.add(index=index).embedding.extend(values)
    metadata = body.get("usageMetadata")
    prompt = metadata.get("promptTokenCount") if isinstance(metadata, dict) else None
    if isinstance(prompt, int):
        result.usage.prompt_tokens = prompt
        result.usage.total_tokens = prompt
    return result


# -- images -----------------------------------------------------------------------------------


def is_imagen(upstream_model: str) -> bool:
    return upstream_model.removeprefix("models/").startswith("imagen")


def aspect_ratio(size: str, choices: tuple[str, ...]) -> str | None:
    """The ratio in `choices` nearest to a "WxH" size; None for "auto"."""
    if size in ("", "auto"):
        return None
    width, x, height = size.lower().partition("x")
    if not x or not width.isdigit() or not height.isdigit() or int(width) == 0 or int(height) == 0:
        raise InvalidRequest(f"Invalid size '{size}': expected WIDTHxHEIGHT.", param="size")
    target = int(width) / int(height)

    def distance(ratio: str) -> float:
        w, _, h = ratio.partition(":")
        return abs(int(w) / int(h) - target)

    return min(choices, key=distance)


def _check_image_params(params: images_pb2.ImageParams) -> None:
    if params.HasField("response_format") and params.response_format != "b64_json":
        raise InvalidRequest(
            "Gemini returns image bytes only: use response_format 'b64_json'.",
            param="response_format",
            code="unsupported_parameter",
        )
    for name in ("style", "partial_images"):
        if params.HasField(name):
            raise InvalidRequest(
                f"The parameter '{name}' is not supported by Gemini.",
                param=name,
                code="unsupported_parameter",
            )
    if params.HasField("background") and params.background not in ("auto", "opaque"):
        raise InvalidRequest("Transparent backgrounds are not supported by Gemini.", param="background")


def imagen_request(params: images_pb2.ImageParams) -> JsonObject:
    _check_image_params(params)
    parameters: JsonObject = {"sampleCount": params.n if params.HasField("n") else 1}
    ratio = aspect_ratio(params.size, IMAGEN_RATIOS) if params.HasField("size") else None
    if ratio:
        parameters["aspectRatio"] = ratio
    if params.HasField("output_format"):
        mime = _OUTPUT_TYPES.get(params.output_format)
        if mime is None or mime == "image/webp":
            raise InvalidRequest(
                f"Imagen cannot write '{params.output_format}' images.", param="output_format"
            )
        parameters["outputOptions"] = {"mimeType": mime}
        if params.HasField("output_compression"):
            parameters["outputOptions"]["compressionQuality"] = params.output_compression
    parameters.update(struct_to_dict(params.extra_body))
    return {"instances": [{"prompt": params.prompt}], "parameters": parameters}


def _result(params: images_pb2.ImageParams, mime_types: list[str]) -> images_pb2.ImagesResult:
    result = images_pb2.ImagesResult(created=int(time.time()))
    if params.HasField("size"):
        result.size = params.size
    if mime_types:
        result.output_format = mime_types[0].removeprefix("image/")
    return result


def images_from_imagen(body: Any, params: images_pb2.ImageParams) -> images_pb2.ImagesResult:
    if not isinstance(body, dict):
        raise MalformedResponse("the response is not an object")
    predictions = body.get("predictions") or []
    if not isinstance(predictions, list):
        raise MalformedResponse("predictions is not an array")
    images = [p for p in predictions if isinstance(p, dict) and isinstance(p.get("bytesBase64Encoded"), str)]
    if not images:
        raise _filtered()
    result = _result(params, [str(p.get("mimeType") or "image/png") for p in images])
    for prediction in images:
        result.data.add(b64_json=prediction["bytesBase64Encoded"])
    return result


def gemini_image_request(params: images_pb2.ImageParams) -> JsonObject:
    _check_image_params(params)
    generation: JsonObject = {"responseModalities": ["TEXT", "IMAGE"]}
    ratio = aspect_ratio(params.size, GEMINI_IMAGE_RATIOS) if params.HasField("size") else None
    if ratio:
        generation["imageConfig"] = {"aspectRatio": ratio}
    body: JsonObject = {"contents": [{"role": "user", "parts": [{"text": params.prompt}]}]}
    body["generationConfig"] = generation
    extra = struct_to_dict(params.extra_body)
    if isinstance(extra.get("generationConfig"), dict):
        generation.update(extra.pop("generationConfig"))
    body.update(extra)
    return body


def images_from_gemini(bodies: list[Any], params: images_pb2.ImageParams) -> images_pb2.ImagesResult:
    """One ImagesResult from the generateContent answers of n requests."""
    pictures: list[tuple[str, str]] = []
    prompt_tokens = output_tokens = 0
    for body in bodies:
        if not isinstance(body, dict):
            raise MalformedResponse("the response is not an object")
        for candidate in body.get("candidates") or []:
            content = candidate.get("content") if isinstance(candidate, dict) else None
            for part in (content or {}).get("parts") or []:
                inline = part.get("inlineData") if isinstance(part, dict) else None
                if isinstance(inline, dict) and isinstance(inline.get("data"), str):
                    pictures.append((inline["data"], str(inline.get("mimeType") or "image/png")))
        usage = body.get("usageMetadata") or {}
        prompt_tokens += int(usage.get("promptTokenCount") or 0)
        output_tokens += int(usage.get("candidatesTokenCount") or 0) + int(
            usage.get("thoughtsTokenCount") or 0
        )
    if not pictures:
        raise _filtered()
    result = _result(params, [mime for _, mime in pictures])
    for data, _ in pictures:
        result.data.add(b64_json=data)
    result.usage.input_tokens = prompt_tokens
    result.usage.output_tokens = output_tokens
    result.usage.total_tokens = prompt_tokens + output_tokens
    return result


def _filtered() -> InvalidRequest:
    return InvalidRequest(
        "The provider returned no image: the prompt or the result was blocked by its safety filters.",
        param="prompt",
        code="content_policy_violation",
    )


def decode_base64(data: str) -> bytes:
    """Bytes of a base64 field Google sent (standard alphabet, padding optional)."""
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4))
    except ValueError:
        raise MalformedResponse("a base64 field is not valid base64") from None
