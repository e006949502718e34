from google.protobuf import struct_pb2 as _struct_pb2
from siraya.router.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_ROLE_UNSPECIFIED: _ClassVar[MessageRole]
    MESSAGE_ROLE_USER: _ClassVar[MessageRole]
    MESSAGE_ROLE_ASSISTANT: _ClassVar[MessageRole]
    MESSAGE_ROLE_SYSTEM: _ClassVar[MessageRole]
MESSAGE_ROLE_UNSPECIFIED: MessageRole
MESSAGE_ROLE_USER: MessageRole
MESSAGE_ROLE_ASSISTANT: MessageRole
MESSAGE_ROLE_SYSTEM: MessageRole

class MessageCacheControl(_message.Message):
    __slots__ = ("type", "ttl")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    type: str
    ttl: str
    def __init__(self, type: _Optional[str] = ..., ttl: _Optional[str] = ...) -> None: ...

class MessageBase64Source(_message.Message):
    __slots__ = ("media_type", "data")
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    media_type: str
    data: str
    def __init__(self, media_type: _Optional[str] = ..., data: _Optional[str] = ...) -> None: ...

class MessageUrlSource(_message.Message):
    __slots__ = ("url",)
    URL_FIELD_NUMBER: _ClassVar[int]
    url: str
    def __init__(self, url: _Optional[str] = ...) -> None: ...

class MessageFileSource(_message.Message):
    __slots__ = ("file_id",)
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    def __init__(self, file_id: _Optional[str] = ...) -> None: ...

class MessageTextSource(_message.Message):
    __slots__ = ("media_type", "data")
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    media_type: str
    data: str
    def __init__(self, media_type: _Optional[str] = ..., data: _Optional[str] = ...) -> None: ...

class MessageTextBlock(_message.Message):
    __slots__ = ("text", "cache_control", "citations")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    text: str
    cache_control: MessageCacheControl
    citations: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    def __init__(self, text: _Optional[str] = ..., cache_control: _Optional[_Union[MessageCacheControl, _Mapping]] = ..., citations: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ...) -> None: ...

class MessageImageBlock(_message.Message):
    __slots__ = ("base64", "url", "file", "cache_control")
    BASE64_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    base64: MessageBase64Source
    url: MessageUrlSource
    file: MessageFileSource
    cache_control: MessageCacheControl
    def __init__(self, base64: _Optional[_Union[MessageBase64Source, _Mapping]] = ..., url: _Optional[_Union[MessageUrlSource, _Mapping]] = ..., file: _Optional[_Union[MessageFileSource, _Mapping]] = ..., cache_control: _Optional[_Union[MessageCacheControl, _Mapping]] = ...) -> None: ...

class MessageDocumentBlock(_message.Message):
    __slots__ = ("base64", "url", "text", "file", "content", "title", "context", "citations", "cache_control")
    BASE64_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    base64: MessageBase64Source
    url: MessageUrlSource
    text: MessageTextSource
    file: MessageFileSource
    content: _struct_pb2.Struct
    title: str
    context: str
    citations: _struct_pb2.Struct
    cache_control: MessageCacheControl
    def __init__(self, base64: _Optional[_Union[MessageBase64Source, _Mapping]] = ..., url: _Optional[_Union[MessageUrlSource, _Mapping]] = ..., text: _Optional[_Union[MessageTextSource, _Mapping]] = ..., file: _Optional[_Union[MessageFileSource, _Mapping]] = ..., content: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., title: _Optional[str] = ..., context: _Optional[str] = ..., citations: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., cache_control: _Optional[_Union[MessageCacheControl, _Mapping]] = ...) -> None: ...

class MessageToolUseBlock(_message.Message):
    __slots__ = ("id", "name", "input_json", "cache_control")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    input_json: bytes
    cache_control: MessageCacheControl
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., input_json: _Optional[bytes] = ..., cache_control: _Optional[_Union[MessageCacheControl, _Mapping]] = ...) -> None: ...

class MessageToolResultBlock(_message.Message):
    __slots__ = ("tool_use_id", "text", "blocks", "is_error", "cache_control")
    TOOL_USE_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    IS_ERROR_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    tool_use_id: str
    text: str
    blocks: MessageContentBlocks
    is_error: bool
    cache_control: MessageCacheControl
    def __init__(self, tool_use_id: _Optional[str] = ..., text: _Optional[str] = ..., blocks: _Optional[_Union[MessageContentBlocks, _Mapping]] = ..., is_error: _Optional[bool] = ..., cache_control: _Optional[_Union[MessageCacheControl, _Mapping]] = ...) -> None: ...

class MessageThinkingBlock(_message.Message):
    __slots__ = ("thinking", "signature")
    THINKING_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    thinking: str
    signature: str
    def __init__(self, thinking: _Optional[str] = ..., signature: _Optional[str] = ...) -> None: ...

class MessageRedactedThinkingBlock(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: str
    def __init__(self, data: _Optional[str] = ...) -> None: ...

class MessageContentBlock(_message.Message):
    __slots__ = ("text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "other")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    TOOL_USE_FIELD_NUMBER: _ClassVar[int]
    TOOL_RESULT_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    REDACTED_THINKING_FIELD_NUMBER: _ClassVar[int]
    OTHER_FIELD_NUMBER: _ClassVar[int]
    text: MessageTextBlock
    image: MessageImageBlock
    document: MessageDocumentBlock
    tool_use: MessageToolUseBlock
    tool_result: MessageToolResultBlock
    thinking: MessageThinkingBlock
    redacted_thinking: MessageRedactedThinkingBlock
    other: _struct_pb2.Struct
    def __init__(self, text: _Optional[_Union[MessageTextBlock, _Mapping]] = ..., image: _Optional[_Union[MessageImageBlock, _Mapping]] = ..., document: _Optional[_Union[MessageDocumentBlock, _Mapping]] = ..., tool_use: _Optional[_Union[MessageToolUseBlock, _Mapping]] = ..., tool_result: _Optional[_Union[MessageToolResultBlock, _Mapping]] = ..., thinking: _Optional[_Union[MessageThinkingBlock, _Mapping]] = ..., redacted_thinking: _Optional[_Union[MessageRedactedThinkingBlock, _Mapping]] = ..., other: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class MessageContentBlocks(_message.Message):
    __slots__ = ("blocks",)
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    blocks: _containers.RepeatedCompositeFieldContainer[MessageContentBlock]
    def __init__(self, blocks: _Optional[_Iterable[_Union[MessageContentBlock, _Mapping]]] = ...) -> None: ...

class InputMessage(_message.Message):
    __slots__ = ("role", "text", "blocks")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    role: MessageRole
    text: str
    blocks: MessageContentBlocks
    def __init__(self, role: _Optional[_Union[MessageRole, str]] = ..., text: _Optional[str] = ..., blocks: _Optional[_Union[MessageContentBlocks, _Mapping]] = ...) -> None: ...

class MessageTool(_message.Message):
    __slots__ = ("name", "description", "input_schema_json", "cache_control", "type", "strict", "extra")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    input_schema_json: bytes
    cache_control: MessageCacheControl
    type: str
    strict: bool
    extra: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., input_schema_json: _Optional[bytes] = ..., cache_control: _Optional[_Union[MessageCacheControl, _Mapping]] = ..., type: _Optional[str] = ..., strict: _Optional[bool] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class MessageToolChoice(_message.Message):
    __slots__ = ("type", "name", "disable_parallel_tool_use")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISABLE_PARALLEL_TOOL_USE_FIELD_NUMBER: _ClassVar[int]
    type: str
    name: str
    disable_parallel_tool_use: bool
    def __init__(self, type: _Optional[str] = ..., name: _Optional[str] = ..., disable_parallel_tool_use: _Optional[bool] = ...) -> None: ...

class MessageThinkingConfig(_message.Message):
    __slots__ = ("type", "budget_tokens", "display")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    BUDGET_TOKENS_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_FIELD_NUMBER: _ClassVar[int]
    type: str
    budget_tokens: int
    display: str
    def __init__(self, type: _Optional[str] = ..., budget_tokens: _Optional[int] = ..., display: _Optional[str] = ...) -> None: ...

class MessageMetadata(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class MessageSystemBlocks(_message.Message):
    __slots__ = ("blocks",)
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    blocks: _containers.RepeatedCompositeFieldContainer[MessageTextBlock]
    def __init__(self, blocks: _Optional[_Iterable[_Union[MessageTextBlock, _Mapping]]] = ...) -> None: ...

class MessageParams(_message.Message):
    __slots__ = ("model", "messages", "max_tokens", "system_text", "system_blocks", "tools", "tool_choice", "thinking", "metadata", "stop_sequences", "temperature", "top_p", "top_k", "service_tier", "stream", "cache_control", "routing", "extra_body")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_TEXT_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    STOP_SEQUENCES_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    SERVICE_TIER_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    EXTRA_BODY_FIELD_NUMBER: _ClassVar[int]
    model: str
    messages: _containers.RepeatedCompositeFieldContainer[InputMessage]
    max_tokens: int
    system_text: str
    system_blocks: MessageSystemBlocks
    tools: _containers.RepeatedCompositeFieldContainer[MessageTool]
    tool_choice: MessageToolChoice
    thinking: MessageThinkingConfig
    metadata: MessageMetadata
    stop_sequences: _containers.RepeatedScalarFieldContainer[str]
    temperature: float
    top_p: float
    top_k: int
    service_tier: str
    stream: bool
    cache_control: MessageCacheControl
    routing: _common_pb2.Routing
    extra_body: _struct_pb2.Struct
    def __init__(self, model: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[InputMessage, _Mapping]]] = ..., max_tokens: _Optional[int] = ..., system_text: _Optional[str] = ..., system_blocks: _Optional[_Union[MessageSystemBlocks, _Mapping]] = ..., tools: _Optional[_Iterable[_Union[MessageTool, _Mapping]]] = ..., tool_choice: _Optional[_Union[MessageToolChoice, _Mapping]] = ..., thinking: _Optional[_Union[MessageThinkingConfig, _Mapping]] = ..., metadata: _Optional[_Union[MessageMetadata, _Mapping]] = ..., stop_sequences: _Optional[_Iterable[str]] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., top_k: _Optional[int] = ..., service_tier: _Optional[str] = ..., stream: _Optional[bool] = ..., cache_control: _Optional[_Union[MessageCacheControl, _Mapping]] = ..., routing: _Optional[_Union[_common_pb2.Routing, _Mapping]] = ..., extra_body: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class MessageOutputTokensDetails(_message.Message):
    __slots__ = ("thinking_tokens",)
    THINKING_TOKENS_FIELD_NUMBER: _ClassVar[int]
    thinking_tokens: int
    def __init__(self, thinking_tokens: _Optional[int] = ...) -> None: ...

class MessageUsage(_message.Message):
    __slots__ = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "cache_creation", "server_tool_use", "service_tier", "output_tokens_details", "cost")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_CREATION_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_READ_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_CREATION_FIELD_NUMBER: _ClassVar[int]
    SERVER_TOOL_USE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_TIER_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_DETAILS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cache_creation: _struct_pb2.Struct
    server_tool_use: _struct_pb2.Struct
    service_tier: str
    output_tokens_details: MessageOutputTokensDetails
    cost: float
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cache_creation_input_tokens: _Optional[int] = ..., cache_read_input_tokens: _Optional[int] = ..., cache_creation: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., server_tool_use: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., service_tier: _Optional[str] = ..., output_tokens_details: _Optional[_Union[MessageOutputTokensDetails, _Mapping]] = ..., cost: _Optional[float] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("id", "type", "role", "content", "model", "stop_reason", "stop_sequence", "usage", "provider")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    STOP_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    role: str
    content: _containers.RepeatedCompositeFieldContainer[MessageContentBlock]
    model: str
    stop_reason: str
    stop_sequence: str
    usage: MessageUsage
    provider: str
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., role: _Optional[str] = ..., content: _Optional[_Iterable[_Union[MessageContentBlock, _Mapping]]] = ..., model: _Optional[str] = ..., stop_reason: _Optional[str] = ..., stop_sequence: _Optional[str] = ..., usage: _Optional[_Union[MessageUsage, _Mapping]] = ..., provider: _Optional[str] = ...) -> None: ...

class MessageStartEvent(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: Message
    def __init__(self, message: _Optional[_Union[Message, _Mapping]] = ...) -> None: ...

class ContentBlockStartEvent(_message.Message):
    __slots__ = ("index", "content_block")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCK_FIELD_NUMBER: _ClassVar[int]
    index: int
    content_block: MessageContentBlock
    def __init__(self, index: _Optional[int] = ..., content_block: _Optional[_Union[MessageContentBlock, _Mapping]] = ...) -> None: ...

class MessageTextDelta(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class MessageInputJsonDelta(_message.Message):
    __slots__ = ("partial_json",)
    PARTIAL_JSON_FIELD_NUMBER: _ClassVar[int]
    partial_json: str
    def __init__(self, partial_json: _Optional[str] = ...) -> None: ...

class MessageThinkingDelta(_message.Message):
    __slots__ = ("thinking",)
    THINKING_FIELD_NUMBER: _ClassVar[int]
    thinking: str
    def __init__(self, thinking: _Optional[str] = ...) -> None: ...

class MessageSignatureDelta(_message.Message):
    __slots__ = ("signature",)
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    signature: str
    def __init__(self, signature: _Optional[str] = ...) -> None: ...

class MessageContentDelta(_message.Message):
    __slots__ = ("text_delta", "input_json_delta", "thinking_delta", "signature_delta", "citations_delta")
    TEXT_DELTA_FIELD_NUMBER: _ClassVar[int]
    INPUT_JSON_DELTA_FIELD_NUMBER: _ClassVar[int]
    THINKING_DELTA_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_DELTA_FIELD_NUMBER: _ClassVar[int]
    CITATIONS_DELTA_FIELD_NUMBER: _ClassVar[int]
    text_delta: MessageTextDelta
    input_json_delta: MessageInputJsonDelta
    thinking_delta: MessageThinkingDelta
    signature_delta: MessageSignatureDelta
    citations_delta: _struct_pb2.Struct
    def __init__(self, text_delta: _Optional[_Union[MessageTextDelta, _Mapping]] = ..., input_json_delta: _Optional[_Union[MessageInputJsonDelta, _Mapping]] = ..., thinking_delta: _Optional[_Union[MessageThinkingDelta, _Mapping]] = ..., signature_delta: _Optional[_Union[MessageSignatureDelta, _Mapping]] = ..., citations_delta: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ContentBlockDeltaEvent(_message.Message):
    __slots__ = ("index", "delta")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    index: int
    delta: MessageContentDelta
    def __init__(self, index: _Optional[int] = ..., delta: _Optional[_Union[MessageContentDelta, _Mapping]] = ...) -> None: ...

class ContentBlockStopEvent(_message.Message):
    __slots__ = ("index",)
    INDEX_FIELD_NUMBER: _ClassVar[int]
    index: int
    def __init__(self, index: _Optional[int] = ...) -> None: ...

class MessageDelta(_message.Message):
    __slots__ = ("stop_reason", "stop_sequence")
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    STOP_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    stop_reason: str
    stop_sequence: str
    def __init__(self, stop_reason: _Optional[str] = ..., stop_sequence: _Optional[str] = ...) -> None: ...

class MessageDeltaEvent(_message.Message):
    __slots__ = ("delta", "usage")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    delta: MessageDelta
    usage: MessageUsage
    def __init__(self, delta: _Optional[_Union[MessageDelta, _Mapping]] = ..., usage: _Optional[_Union[MessageUsage, _Mapping]] = ...) -> None: ...

class MessageStopEvent(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingEvent(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MessageStreamEvent(_message.Message):
    __slots__ = ("message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop", "ping", "other")
    MESSAGE_START_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCK_START_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCK_DELTA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCK_STOP_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_DELTA_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_STOP_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    OTHER_FIELD_NUMBER: _ClassVar[int]
    message_start: MessageStartEvent
    content_block_start: ContentBlockStartEvent
    content_block_delta: ContentBlockDeltaEvent
    content_block_stop: ContentBlockStopEvent
    message_delta: MessageDeltaEvent
    message_stop: MessageStopEvent
    ping: PingEvent
    other: _struct_pb2.Struct
    def __init__(self, message_start: _Optional[_Union[MessageStartEvent, _Mapping]] = ..., content_block_start: _Optional[_Union[ContentBlockStartEvent, _Mapping]] = ..., content_block_delta: _Optional[_Union[ContentBlockDeltaEvent, _Mapping]] = ..., content_block_stop: _Optional[_Union[ContentBlockStopEvent, _Mapping]] = ..., message_delta: _Optional[_Union[MessageDeltaEvent, _Mapping]] = ..., message_stop: _Optional[_Union[MessageStopEvent, _Mapping]] = ..., ping: _Optional[_Union[PingEvent, _Mapping]] = ..., other: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CreateMessageRequest(_message.Message):
    __slots__ = ("params", "anthropic_json", "body_json")
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    ANTHROPIC_JSON_FIELD_NUMBER: _ClassVar[int]
    BODY_JSON_FIELD_NUMBER: _ClassVar[int]
    params: MessageParams
    anthropic_json: bool
    body_json: bytes
    def __init__(self, params: _Optional[_Union[MessageParams, _Mapping]] = ..., anthropic_json: _Optional[bool] = ..., body_json: _Optional[bytes] = ...) -> None: ...

class CreateMessageResponse(_message.Message):
    __slots__ = ("message", "message_json", "provider")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_JSON_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    message: Message
    message_json: bytes
    provider: str
    def __init__(self, message: _Optional[_Union[Message, _Mapping]] = ..., message_json: _Optional[bytes] = ..., provider: _Optional[str] = ...) -> None: ...

class StreamMessageRequest(_message.Message):
    __slots__ = ("params", "anthropic_json", "body_json")
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    ANTHROPIC_JSON_FIELD_NUMBER: _ClassVar[int]
    BODY_JSON_FIELD_NUMBER: _ClassVar[int]
    params: MessageParams
    anthropic_json: bool
    body_json: bytes
    def __init__(self, params: _Optional[_Union[MessageParams, _Mapping]] = ..., anthropic_json: _Optional[bool] = ..., body_json: _Optional[bytes] = ...) -> None: ...

class StreamMessageResponse(_message.Message):
    __slots__ = ("event", "event_json", "event_type", "provider")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    EVENT_JSON_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    event: MessageStreamEvent
    event_json: bytes
    event_type: str
    provider: str
    def __init__(self, event: _Optional[_Union[MessageStreamEvent, _Mapping]] = ..., event_json: _Optional[bytes] = ..., event_type: _Optional[str] = ..., provider: _Optional[str] = ...) -> None: ...

class CountTokensRequest(_message.Message):
    __slots__ = ("params",)
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    params: MessageParams
    def __init__(self, params: _Optional[_Union[MessageParams, _Mapping]] = ...) -> None: ...

class CountTokensResponse(_message.Message):
    __slots__ = ("input_tokens",)
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    def __init__(self, input_tokens: _Optional[int] = ...) -> None: ...
