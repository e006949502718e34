"""Chat completion params -> a Gemini `GenerateContentRequest` body (pure; media arrives pre-fetched).

Decisions, each the most faithful the Gemini API allows:

- system and developer messages, wherever they sit, become `systemInstruction` text parts in order;
  user turns are role `user`, assistant turns role `model`, and tool results `functionResponse`
  parts of one `user` turn (consecutive tool messages answer one model turn together, as Gemini wants).
- tool parameters go as `parametersJsonSchema` and a `json_schema` response format as
  `responseJsonSchema`: both take the client's JSON Schema as it is, where the older `parameters` /
  `responseSchema` fields take an OpenAPI 3.0 subset that would need a lossy rewrite.
- a tool message becomes `functionResponse{name, response}`, its name looked up from the assistant
  tool call it answers; a JSON-object result is the response itself, anything else `{"output": text}`.
- `reasoning_effort` becomes `thinkingConfig`: `thinkingLevel` on Gemini 3 models, else a
  `thinkingBudget` (see THINKING_BUDGETS), with `includeThoughts` unless the effort is "none".
- `extra_body.top_k` is `topK`; `generationConfig` / `thinkingConfig` / `safetySettings` /
  `cachedContent` objects in extra_body are merged where they belong; other keys go top-level untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from server.errors import InternalError, InvalidRequest
from server.providers.gemini.tool_ids import split_tool_call_id
from server.providers.gemini.tools import tools_and_config
from server.providers.param_policy import ParameterSupport
from server.providers.remote_media import Media, base64_text
from siraya.router.codec.fields import struct_to_dict
from siraya.router.v1 import chat_pb2

__all__ = [
    "CHAT_SUPPORT",
    "THINKING_BUDGETS",
    "THINKING_LEVELS",
    "MediaRef",
    "generate_content_request",
    "media_references",
    "thinking_config",
]

CHAT_SUPPORT = ParameterSupport(
    supported=frozenset(
        {
            "temperature",
            "top_p",
            "n",
            "stop",
            "max_tokens",
            "max_completion_tokens",
            "presence_penalty",
            "frequency_penalty",
            "logprobs",
            "top_logprobs",
            "seed",
            "tools",
            "tool_choice",
            "response_format",
            "reasoning_effort",
            "stream_options",
            "image_url",
            "input_audio",
            "file",
        }
    )
)

# Gemini 2.x thinking budgets in tokens. 0 turns thinking off (Flash models; Pro models refuse 0,
# and Google's 400 then reaches the client). 24576 is the Flash ceiling, 32768 the Pro ceiling.
THINKING_BUDGETS: dict[str, int] = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
}
# Gemini 3 models take a level instead of a budget; they cannot turn thinking fully off.
THINKING_LEVELS: dict[str, str] = {
    "none": "minimal",
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
}
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}
_ROLE = chat_pb2.ChatRole

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A client media URL (https or data:) that must be inlined; `param` names its request part."""

    param: str
    url: str


def media_references(params: chat_pb2.ChatCompletionParams) -> list[MediaRef]:
    """Every image and file part whose bytes must be fetched or decoded before translation."""
    refs: list[MediaRef] = []
    for i, message in enumerate(params.messages):
        # Only user turns may carry media; anywhere else the translation refuses the part.
        if message.role != _ROLE.CHAT_ROLE_USER or message.WhichOneof("content") != "parts":
            continue
        for j, part in enumerate(message.parts.parts):
            kind = part.WhichOneof("part")
            if kind == "image_url":
                refs.append(MediaRef(f"messages[{i}].content[{j}].image_url", part.image_url.url))
            elif kind == "file":
                refs.append(MediaRef(f"messages[{i}].content[{j}].file", _file_url(part.file, i, j)))
    return refs


def _file_url(file: chat_pb2.FilePart, i: int, j: int) -> str:
    param = f"messages[{i}].content[{j}].file"
    if file.HasField("file_id") and not file.HasField("file_data"):
        raise InvalidRequest(
            "Uploaded file ids are not supported by Gemini; send the file as file_data.",
            param=f"{param}.file_id",
            code="unsupported_parameter",
        )
    data = file.file_data
    if not data.startswith("data:"):
        raise InvalidRequest("file_data must be a data: URL with base64 content.", param=f"{param}.file_data")
    return data


def generate_content_request(
    params: chat_pb2.ChatCompletionParams, upstream_model: str, media: Mapping[str, Media]
) -> JsonObject:
    """The JSON body for `models/<m>:generateContent` (and `:streamGenerateContent`)."""
    system_parts, contents = _contents(params, media)
    if not contents:
        if not system_parts:
            raise InvalidRequest("The request has no message content to send.", param="messages")
        # Gemini needs at least one turn; a system-only request is answered from that text.
        contents, system_parts = [{"role": "user", "parts": system_parts}], []
    body: JsonObject = {"contents": contents}
    if system_parts:
        body["systemInstruction"] = {"parts": system_parts}
    tools, tool_config = tools_and_config(params)
    if tools:
        body["tools"] = tools
    if tool_config:
        body["toolConfig"] = tool_config
    generation = _generation_config(params, upstream_model)
    if params.HasField("extra_body"):
        _merge_extra_body(struct_to_dict(params.extra_body), body, generation)
    if generation:
        body["generationConfig"] = generation
    return body


# -- messages ---------------------------------------------------------------------------------


def _contents(
    params: chat_pb2.ChatCompletionParams, media: Mapping[str, Media]
) -> tuple[list[JsonObject], list[JsonObject]]:
    system_parts: list[JsonObject] = []
    contents: list[JsonObject] = []
    call_names: dict[str, str] = {}
    # The user turn collecting the function responses that answer the latest model turn.
    responses: list[JsonObject] | None = None
    for i, message in enumerate(params.messages):
        role = message.role
        if role != _ROLE.CHAT_ROLE_TOOL:
            responses = None
        if role in (_ROLE.CHAT_ROLE_SYSTEM, _ROLE.CHAT_ROLE_DEVELOPER):
            system_parts.extend({"text": text} for text in _texts(message, i) if text)
        elif role == _ROLE.CHAT_ROLE_USER:
            parts = _user_parts(message, i, media)
            if parts:
                contents.append({"role": "user", "parts": parts})
        elif role == _ROLE.CHAT_ROLE_ASSISTANT:
            parts = _model_parts(message, i, call_names)
            if parts:
                contents.append({"role": "model", "parts": parts})
        elif role == _ROLE.CHAT_ROLE_TOOL:
            part = _function_response(message, i, call_names)
            if responses is None:
                responses = []
                contents.append({"role": "user", "parts": responses})
            responses.append(part)
        else:
            raise InvalidRequest(
                "The deprecated 'function' role is not supported by Gemini; use tool messages.",
                param=f"messages[{i}].role",
                code="unsupported_parameter",
            )
    return system_parts, contents


def _texts(message: chat_pb2.ChatMessage, i: int) -> list[str]:
    """The text of a message that may only hold text (system, developer, tool)."""
    kind = message.WhichOneof("content")
    if kind == "text":
        return [message.text]
    if kind != "parts":
        return []
    texts: list[str] = []
    for j, part in enumerate(message.parts.parts):
        which = part.WhichOneof("part")
        if which == "text":
            texts.append(part.text.text)
        elif which == "refusal":
            texts.append(part.refusal.refusal)
        else:
            raise InvalidRequest(
                f"Only text content is allowed in this message for Gemini, not '{which}'.",
                param=f"messages[{i}].content[{j}]",
            )
    return texts


def _user_parts(message: chat_pb2.ChatMessage, i: int, media: Mapping[str, Media]) -> list[JsonObject]:
    kind = message.WhichOneof("content")
    if kind == "text":
        return [{"text": message.text}] if message.text else []
    if kind != "parts":
        return []
    parts: list[JsonObject] = []
    for j, part in enumerate(message.parts.parts):
        which = part.WhichOneof("part")
        if which == "text":
            if part.text.text:
                parts.append({"text": part.text.text})
        elif which == "refusal":
            parts.append({"text": part.refusal.refusal})
        elif which == "input_audio":
            mime = _AUDIO_TYPES.get(part.input_audio.format)
            if mime is None:
                raise InvalidRequest(
                    f"Unsupported audio format '{part.input_audio.format}' (expected wav or mp3).",
                    param=f"messages[{i}].content[{j}].input_audio.format",
                )
            parts.append({"inlineData": {"mimeType": mime, "data": part.input_audio.data}})
        elif which in ("image_url", "file"):
            fetched = media.get(f"messages[{i}].content[{j}].{which}")
            if fetched is None:
                raise InternalError(f"The media of messages[{i}].content[{j}] was not fetched.")
            data = base64_text(fetched)
            parts.append({"inlineData": {"mimeType": fetched.media_type, "data": data}})
    return parts


def _model_parts(message: chat_pb2.ChatMessage, i: int, call_names: dict[str, str]) -> list[JsonObject]:
    parts: list[JsonObject] = [{"text": text} for text in _texts(message, i) if text]
    if message.HasField("refusal") and message.refusal:
        parts.append({"text": message.refusal})
    for k, call in enumerate(message.tool_calls):
        param = f"messages[{i}].tool_calls[{k}]"
        if call.type not in ("", "function"):
            raise InvalidRequest("Only function tool calls are supported by Gemini.", param=f"{param}.type")
        call_names[call.id] = call.function.name
        part: JsonObject = {"functionCall": {"name": call.function.name, "args": _arguments(call, param)}}
        _, signature = split_tool_call_id(call.id)
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _arguments(call: chat_pb2.ToolCall, param: str) -> Any:
    raw = call.function.arguments.strip()
    if not raw:
        return {}
    try:
        args = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "Tool call arguments must be a JSON object.", param=f"{param}.function.arguments"
        ) from None
    if not isinstance(args, dict):
        raise InvalidRequest(
            "Tool call arguments must be a JSON object.", param=f"{param}.function.arguments"
        )
    return args


def _function_response(message: chat_pb2.ChatMessage, i: int, call_names: Mapping[str, str]) -> JsonObject:
    name = call_names.get(message.tool_call_id) or (message.name if message.HasField("name") else "")
    if not name:
        raise InvalidRequest(
            f"No earlier assistant tool call has the id '{message.tool_call_id}'.",
            param=f"messages[{i}].tool_call_id",
        )
    text = "".join(_texts(message, i))
    try:
        parsed = orjson.loads(text) if text.lstrip().startswith("{") else None
    except orjson.JSONDecodeError:
        parsed = None
    response = parsed if isinstance(parsed, dict) else {"output": text}
    return {"functionResponse": {"name": name, "response": response}}


# -- generation config ------------------------------------------------------------------------


def _generation_config(params: chat_pb2.ChatCompletionParams, upstream_model: str) -> JsonObject:
    config: JsonObject = {}
    if params.HasField("temperature"):
        config["temperature"] = params.temperature
    if params.HasField("top_p"):
        config["topP"] = params.top_p
    if params.HasField("n"):
        config["candidateCount"] = params.n
    if params.HasField("max_completion_tokens"):
        config["maxOutputTokens"] = params.max_completion_tokens
    elif params.HasField("max_tokens"):
        config["maxOutputTokens"] = params.max_tokens
    if params.stop:
        config["stopSequences"] = list(params.stop)
    if params.HasField("seed"):
        config["seed"] = params.seed
    if params.HasField("presence_penalty"):
        config["presencePenalty"] = params.presence_penalty
    if params.HasField("frequency_penalty"):
        config["frequencyPenalty"] = params.frequency_penalty
    if params.logprobs:
        config["responseLogprobs"] = True
        if params.HasField("top_logprobs"):
            config["logprobs"] = params.top_logprobs
    if params.HasField("response_format"):
        _response_format(params.response_format, config)
    if params.HasField("reasoning_effort"):
        config["thinkingConfig"] = thinking_config(params.reasoning_effort, upstream_model)
    return config


def _response_format(response_format: chat_pb2.ResponseFormat, config: JsonObject) -> None:
    if response_format.type == "json_object":
        config["responseMimeType"] = "application/json"
    elif response_format.type == "json_schema":
        config["responseMimeType"] = "application/json"
        if response_format.json_schema.HasField("schema_json"):
            config["responseJsonSchema"] = orjson.loads(response_format.json_schema.schema_json)
    elif response_format.type not in ("", "text"):
        raise InvalidRequest(
            f"response_format '{response_format.type}' is not supported by Gemini.",
            param="response_format.type",
        )


def thinking_config(effort: str, upstream_model: str) -> JsonObject:
    """The thinkingConfig for an OpenAI reasoning_effort on this model."""
    if effort not in THINKING_BUDGETS:
        raise InvalidRequest(f"Unknown reasoning_effort '{effort}'.", param="reasoning_effort")
    config: JsonObject
    if upstream_model.removeprefix("models/").startswith("gemini-3"):
        config = {"thinkingLevel": THINKING_LEVELS[effort]}
    else:
        config = {"thinkingBudget": THINKING_BUDGETS[effort]}
    if effort != "none":
        config["includeThoughts"] = True
    return config


def _merge_extra_body(extra: JsonObject, body: JsonObject, generation: JsonObject) -> None:
    for key, value in extra.items():
        if key in ("top_k", "topK"):
            generation["topK"] = value
        elif key in ("generationConfig", "generation_config") and isinstance(value, dict):
            generation.update(value)
        elif key in ("thinkingConfig", "thinking_config") and isinstance(value, dict):
            generation["thinkingConfig"] = value
        elif key in ("safetySettings", "safety_settings"):
            body["safetySettings"] = value
        elif key in ("cachedContent", "cached_content"):
            body["cachedContent"] = value
        else:
            body[key] = value
