from google.protobuf import struct_pb2 as _struct_pb2
from siraya.router.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageParams(_message.Message):
    __slots__ = ("prompt", "model", "n", "quality", "response_format", "output_format", "output_compression", "size", "moderation", "background", "style", "user", "partial_images", "routing", "extra_body")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MODERATION_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_IMAGES_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    EXTRA_BODY_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    model: str
    n: int
    quality: str
    response_format: str
    output_format: str
    output_compression: int
    size: str
    moderation: str
    background: str
    style: str
    user: str
    partial_images: int
    routing: _common_pb2.Routing
    extra_body: _struct_pb2.Struct
    def __init__(self, prompt: _Optional[str] = ..., model: _Optional[str] = ..., n: _Optional[int] = ..., quality: _Optional[str] = ..., response_format: _Optional[str] = ..., output_format: _Optional[str] = ..., output_compression: _Optional[int] = ..., size: _Optional[str] = ..., moderation: _Optional[str] = ..., background: _Optional[str] = ..., style: _Optional[str] = ..., user: _Optional[str] = ..., partial_images: _Optional[int] = ..., routing: _Optional[_Union[_common_pb2.Routing, _Mapping]] = ..., extra_body: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("b64_json", "url", "revised_prompt")
    B64_JSON_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    REVISED_PROMPT_FIELD_NUMBER: _ClassVar[int]
    b64_json: str
    url: str
    revised_prompt: str
    def __init__(self, b64_json: _Optional[str] = ..., url: _Optional[str] = ..., revised_prompt: _Optional[str] = ...) -> None: ...

class ImageUsage(_message.Message):
    __slots__ = ("input_tokens", "output_tokens", "total_tokens", "text_tokens", "image_tokens", "cost", "output_image_tokens", "output_text_tokens")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_IMAGE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    output_tokens: int
    total_tokens: int
    text_tokens: int
    image_tokens: int
    cost: float
    output_image_tokens: int
    output_text_tokens: int
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., text_tokens: _Optional[int] = ..., image_tokens: _Optional[int] = ..., cost: _Optional[float] = ..., output_image_tokens: _Optional[int] = ..., output_text_tokens: _Optional[int] = ...) -> None: ...

class ImagesResult(_message.Message):
    __slots__ = ("created", "data", "background", "output_format", "size", "quality", "usage", "model", "provider")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    created: int
    data: _containers.RepeatedCompositeFieldContainer[Image]
    background: str
    output_format: str
    size: str
    quality: str
    usage: ImageUsage
    model: str
    provider: str
    def __init__(self, created: _Optional[int] = ..., data: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., background: _Optional[str] = ..., output_format: _Optional[str] = ..., size: _Optional[str] = ..., quality: _Optional[str] = ..., usage: _Optional[_Union[ImageUsage, _Mapping]] = ..., model: _Optional[str] = ..., provider: _Optional[str] = ...) -> None: ...

class GenerateImagesRequest(_message.Message):
    __slots__ = ("params",)
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    params: ImageParams
    def __init__(self, params: _Optional[_Union[ImageParams, _Mapping]] = ...) -> None: ...

class GenerateImagesResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: ImagesResult
    def __init__(self, result: _Optional[_Union[ImagesResult, _Mapping]] = ...) -> None: ...
