"""The request-shape rules the real Gemini API enforces, so that translation bugs fail tests.

Each check raises `Invalid` with a message in Google's style; the server answers it as a
400 INVALID_ARGUMENT, exactly as the API would (and the gateway then reports it as a 400).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import Counter
from typing import Any

__all__ = [
    "Invalid",
    "check_embed",
    "check_generate_content",
    "check_predict",
    "check_predict_long_running",
]

GENERATE_CONTENT_FIELDS = frozenset(
    {
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "generationConfig",
        "safetySettings",
        "cachedContent",
    }
)
GENERATION_CONFIG_FIELDS = frozenset(
    {
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "responseModalities",
        "candidateCount",
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "enableEnhancedCivicAnswers",
        "speechConfig",
        "thinkingConfig",
        "imageConfig",
        "mediaResolution",
    }
)
THINKING_FIELDS = frozenset({"includeThoughts", "thinkingBudget", "thinkingLevel"})
PART_DATA_FIELDS = frozenset(
    {
        "text",
        "inlineData",
        "functionCall",
        "functionResponse",
        "fileData",
        "executableCode",
        "codeExecutionResult",
    }
)
PART_META_FIELDS = frozenset({"thought", "thoughtSignature", "videoMetadata"})
CALLING_MODES = frozenset({"AUTO", "ANY", "NONE", "VALIDATED"})
VEO_PARAMETERS = frozenset(
    {"durationSeconds", "aspectRatio", "resolution", "negativePrompt", "personGeneration", "sampleCount"}
)
IMAGEN_PARAMETERS = frozenset(
    {"sampleCount", "aspectRatio", "outputOptions", "personGeneration", "imageSize"}
)
_FUNCTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")


class Invalid(Exception):
    """The request breaks a rule of the API; `str(error)` is Google's style of message."""


def _unknown(fields: Any, allowed: frozenset[str], where: str) -> None:
    if not isinstance(fields, dict):
        raise Invalid(f"Invalid JSON payload received. Expected an object for '{where}'.")
    for key in fields:
        if key not in allowed:
            raise Invalid(
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
            )


def _base64(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise Invalid(f"* {where}: expected base64 string")
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(f"Invalid value at '{where}' (TYPE_BYTES), Base64 decoding failed") from None


def _check_part(part: Any, where: str) -> str:
    """The kind of data the part carries."""
    _unknown(part, PART_DATA_FIELDS | PART_META_FIELDS, where)
    kinds = [key for key in part if key in PART_DATA_FIELDS]
    if len(kinds) != 1:
        raise Invalid(f"* {where}: a part must hold exactly one of the data fields, not {kinds or 'none'}")
    kind = kinds[0]
    value = part[kind]
    if kind == "text" and not isinstance(value, str):
        raise Invalid(f"* {where}.text: expected a string")
    if kind == "inlineData":
        _unknown(value, frozenset({"mimeType", "data"}), f"{where}.inline_data")
        if not isinstance(value.get("mimeType"), str) or "/" not in value["mimeType"]:
            raise Invalid(f"* {where}.inline_data.mime_type: a mime type is required")
        _base64(value.get("data"), f"{where}.inline_data.data")
    if kind in ("functionCall", "functionResponse"):
        field = "args" if kind == "functionCall" else "response"
        _unknown(value, frozenset({"name", "id", field}), f"{where}.{kind}")
        if not isinstance(value.get("name"), str) or not value["name"]:
            raise Invalid(f"* {where}.{kind}.name: Name cannot be empty.")
        if field in value and not isinstance(value[field], dict):
            raise Invalid(
                f"Invalid value at '{where}.{kind}.{field}' (type.googleapis.com/google.protobuf.Struct)"
            )
    if "thoughtSignature" in part:
        _base64(part["thoughtSignature"].replace("-", "+").replace("_", "/"), f"{where}.thought_signature")
    return kind


def _check_contents(contents: Any) -> None:
    if not isinstance(contents, list) or not contents:
        raise Invalid("* GenerateContentRequest.contents: contents is not specified")
    pending_calls: Counter[str] | None = None
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        _unknown(content, frozenset({"role", "parts"}), where)
        role = content.get("role")
        if role not in ("user", "model"):
            raise Invalid(f"Please use a valid role: user, model. Got '{role}' at {where}.")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise Invalid(f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.")
        kinds = [_check_part(part, f"{where}.parts[{j}]") for j, part in enumerate(parts)]
        responses = Counter(part["functionResponse"]["name"] for part in parts if "functionResponse" in part)
        if responses and role != "user":
            raise Invalid(f"* {where}: function responses must be sent with role user")
        if "functionCall" in kinds and role != "model":
            raise Invalid(f"* {where}: function calls can only come from the model")
        if pending_calls is not None:
            if responses != pending_calls:
                raise Invalid(
                    "Please ensure that the number of function response parts is equal to the number of "
                    f"function call parts of the call turn ({dict(responses)} for {dict(pending_calls)})."
                )
            pending_calls = None
        elif responses:
            raise Invalid(
                "Please ensure that function response turn comes immediately after a function call turn."
            )
        calls = Counter(part["functionCall"]["name"] for part in parts if "functionCall" in part)
        if calls:
            pending_calls = calls


def _declared_names(tools: Any) -> set[str]:
    if not isinstance(tools, list):
        raise Invalid("Invalid JSON payload received. 'tools' must be a list.")
    names: set[str] = set()
    for t, tool in enumerate(tools):
        _unknown(
            tool,
            frozenset({"functionDeclarations", "googleSearch", "codeExecution", "urlContext"}),
            f"tools[{t}]",
        )
        for d, declaration in enumerate(tool.get("functionDeclarations") or []):
            where = f"tools[{t}].function_declarations[{d}]"
            allowed = frozenset(
                {"name", "description", "parameters", "parametersJsonSchema", "response", "behavior"}
            )
            _unknown(declaration, allowed, where)
            name = declaration.get("name")
            if not isinstance(name, str) or not _FUNCTION_NAME.match(name):
                raise Invalid(f"* GenerateContentRequest.{where}.name: Invalid function name.")
            if "parameters" in declaration and "parametersJsonSchema" in declaration:
                raise Invalid(f"* {where}: parameters and parameters_json_schema are mutually exclusive")
            schema = declaration.get("parametersJsonSchema")
            if schema is not None and not isinstance(schema, dict):
                raise Invalid(f"* {where}.parameters_json_schema: expected a JSON Schema object")
            names.add(name)
    return names


def _check_tool_config(config: Any, names: set[str]) -> None:
    _unknown(config, frozenset({"functionCallingConfig"}), "tool_config")
    calling = config.get("functionCallingConfig") or {}
    _unknown(calling, frozenset({"mode", "allowedFunctionNames"}), "tool_config.function_calling_config")
    mode = calling.get("mode", "AUTO")
    if mode not in CALLING_MODES:
        raise Invalid(f"Invalid value at 'tool_config.function_calling_config.mode', \"{mode}\"")
    allowed = calling.get("allowedFunctionNames")
    if allowed is not None:
        if mode not in ("ANY", "VALIDATED"):
            raise Invalid(
                "* function_calling_config: allowed_function_names should only be set when mode is ANY."
            )
        unknown = [name for name in allowed if name not in names]
        if unknown:
            raise Invalid(f"* allowed_function_names: {unknown} are not declared functions")


def _check_generation_config(config: Any) -> None:
    _unknown(config, GENERATION_CONFIG_FIELDS, "generation_config")
    if "responseSchema" in config and "responseJsonSchema" in config:
        raise Invalid("* GenerationConfig: response_schema and response_json_schema cannot both be set.")
    if ("responseSchema" in config or "responseJsonSchema" in config) and config.get(
        "responseMimeType"
    ) != "application/json":
        raise Invalid("* GenerationConfig.response_mime_type: must be application/json when a schema is set.")
    thinking = config.get("thinkingConfig")
    if thinking is not None:
        _unknown(thinking, THINKING_FIELDS, "generation_config.thinking_config")
        if "thinkingBudget" in thinking and "thinkingLevel" in thinking:
            raise Invalid("* ThinkingConfig: thinking_budget and thinking_level are mutually exclusive.")
    for name in ("candidateCount", "maxOutputTokens", "topK", "seed", "logprobs"):
        if name in config and (not isinstance(config[name], int) or isinstance(config[name], bool)):
            raise Invalid(f"Invalid value at 'generation_config.{name}' (TYPE_INT32)")
    stops = config.get("stopSequences")
    if stops is not None and (not isinstance(stops, list) or len(stops) > 5):
        raise Invalid("* GenerationConfig.stop_sequences: at most 5 stop sequences are allowed.")


def check_generate_content(body: Any) -> None:
    _unknown(body, GENERATE_CONTENT_FIELDS, "")
    _check_contents(body.get("contents"))
    system = body.get("systemInstruction")
    if system is not None:
        _unknown(system, frozenset({"role", "parts"}), "system_instruction")
        for j, part in enumerate(system.get("parts") or []):
            if _check_part(part, f"system_instruction.parts[{j}]") != "text":
                raise Invalid("* system_instruction: only text parts are allowed")
    names = _declared_names(body.get("tools") or [])
    if "toolConfig" in body:
        _check_tool_config(body["toolConfig"], names)
    if "generationConfig" in body:
        _check_generation_config(body["generationConfig"])


def check_embed(body: Any, model: str) -> None:
    _unknown(body, frozenset({"requests"}), "")
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise Invalid("* BatchEmbedContentsRequest.requests: requests is required")
    allowed = frozenset({"model", "content", "taskType", "title", "outputDimensionality"})
    for i, request in enumerate(requests):
        _unknown(request, allowed, f"requests[{i}]")
        if request.get("model") != f"models/{model}":
            raise Invalid(
                f"* BatchEmbedContentsRequest.requests[{i}].model: the model must be models/{model}, "
                f"got {request.get('model')!r}."
            )
        parts = (request.get("content") or {}).get("parts")
        if not isinstance(parts, list) or not parts or any(not isinstance(p.get("text"), str) for p in parts):
            raise Invalid(f"* BatchEmbedContentsRequest.requests[{i}].content: text parts are required")


def _check_instances(body: Any, parameters: frozenset[str]) -> dict[str, Any]:
    _unknown(body, frozenset({"instances", "parameters"}), "")
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        raise Invalid("* instances: exactly one instance is required")
    if not isinstance(instances[0].get("prompt"), str) or not instances[0]["prompt"]:
        raise Invalid("* instances[0].prompt: a prompt is required")
    params = body.get("parameters") or {}
    _unknown(params, parameters, "parameters")
    return params


def check_predict(body: Any) -> None:
    params = _check_instances(body, IMAGEN_PARAMETERS)
    _unknown(body["instances"][0], frozenset({"prompt"}), "instances[0]")
    if params.get("aspectRatio", "1:1") not in ("1:1", "3:4", "4:3", "9:16", "16:9"):
        raise Invalid(f"Invalid aspect ratio {params['aspectRatio']!r}.")
    if not 1 <= params.get("sampleCount", 1) <= 4:
        raise Invalid("sampleCount must be between 1 and 4.")


def check_predict_long_running(body: Any) -> None:
    params = _check_instances(body, VEO_PARAMETERS)
    instance = body["instances"][0]
    _unknown(instance, frozenset({"prompt", "image"}), "instances[0]")
    if "image" in instance:
        _unknown(instance["image"], frozenset({"bytesBase64Encoded", "mimeType"}), "instances[0].image")
        _base64(instance["image"].get("bytesBase64Encoded"), "instances[0].image.bytesBase64Encoded")
    if params.get("aspectRatio", "16:9") not in ("16:9", "9:16"):
        raise Invalid(f"Aspect ratio {params['aspectRatio']!r} is not supported.")
    if params.get("durationSeconds", 8) not in (4, 5, 6, 8):
        raise Invalid(f"The duration {params['durationSeconds']!r} seconds is out of range.")
