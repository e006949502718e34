from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_KIND_UNSPECIFIED: _ClassVar[ModelKind]
    MODEL_KIND_CHAT: _ClassVar[ModelKind]
    MODEL_KIND_EMBEDDING: _ClassVar[ModelKind]
    MODEL_KIND_IMAGE: _ClassVar[ModelKind]
    MODEL_KIND_VIDEO: _ClassVar[ModelKind]
MODEL_KIND_UNSPECIFIED: ModelKind
MODEL_KIND_CHAT: ModelKind
MODEL_KIND_EMBEDDING: ModelKind
MODEL_KIND_IMAGE: ModelKind
MODEL_KIND_VIDEO: ModelKind

class ModelPricing(_message.Message):
    __slots__ = ("input_per_million", "output_per_million", "per_image", "per_video_second", "cache_read_per_million", "cache_write_per_million", "audio_input_per_million", "audio_output_per_million", "reasoning_per_million", "free", "source", "as_of")
    INPUT_PER_MILLION_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PER_MILLION_FIELD_NUMBER: _ClassVar[int]
    PER_IMAGE_FIELD_NUMBER: _ClassVar[int]
    PER_VIDEO_SECOND_FIELD_NUMBER: _ClassVar[int]
    CACHE_READ_PER_MILLION_FIELD_NUMBER: _ClassVar[int]
    CACHE_WRITE_PER_MILLION_FIELD_NUMBER: _ClassVar[int]
    AUDIO_INPUT_PER_MILLION_FIELD_NUMBER: _ClassVar[int]
    AUDIO_OUTPUT_PER_MILLION_FIELD_NUMBER: _ClassVar[int]
    REASONING_PER_MILLION_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    input_per_million: float
    output_per_million: float
    per_image: float
    per_video_second: float
    cache_read_per_million: float
    cache_write_per_million: float
    audio_input_per_million: float
    audio_output_per_million: float
    reasoning_per_million: float
    free: bool
    source: str
    as_of: str
    def __init__(self, input_per_million: _Optional[float] = ..., output_per_million: _Optional[float] = ..., per_image: _Optional[float] = ..., per_video_second: _Optional[float] = ..., cache_read_per_million: _Optional[float] = ..., cache_write_per_million: _Optional[float] = ..., audio_input_per_million: _Optional[float] = ..., audio_output_per_million: _Optional[float] = ..., reasoning_per_million: _Optional[float] = ..., free: _Optional[bool] = ..., source: _Optional[str] = ..., as_of: _Optional[str] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("id", "object", "created", "owned_by", "kind", "context_window", "pricing", "supported_parameters", "max_output_tokens")
    ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    OWNED_BY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_WINDOW_FIELD_NUMBER: _ClassVar[int]
    PRICING_FIELD_NUMBER: _ClassVar[int]
    SUPPORTED_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    id: str
    object: str
    created: int
    owned_by: str
    kind: ModelKind
    context_window: int
    pricing: ModelPricing
    supported_parameters: _containers.RepeatedScalarFieldContainer[str]
    max_output_tokens: int
    def __init__(self, id: _Optional[str] = ..., object: _Optional[str] = ..., created: _Optional[int] = ..., owned_by: _Optional[str] = ..., kind: _Optional[_Union[ModelKind, str]] = ..., context_window: _Optional[int] = ..., pricing: _Optional[_Union[ModelPricing, _Mapping]] = ..., supported_parameters: _Optional[_Iterable[str]] = ..., max_output_tokens: _Optional[int] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedCompositeFieldContainer[Model]
    def __init__(self, data: _Optional[_Iterable[_Union[Model, _Mapping]]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...
