from google.protobuf import struct_pb2 as _struct_pb2
from siraya.router.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageReference(_message.Message):
    __slots__ = ("image_url", "data", "mime_type", "file_id")
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    image_url: str
    data: bytes
    mime_type: str
    file_id: str
    def __init__(self, image_url: _Optional[str] = ..., data: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., file_id: _Optional[str] = ...) -> None: ...

class VideoParams(_message.Message):
    __slots__ = ("model", "prompt", "seconds", "size", "input_reference", "routing", "extra_body")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    INPUT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    EXTRA_BODY_FIELD_NUMBER: _ClassVar[int]
    model: str
    prompt: str
    seconds: str
    size: str
    input_reference: ImageReference
    routing: _common_pb2.Routing
    extra_body: _struct_pb2.Struct
    def __init__(self, model: _Optional[str] = ..., prompt: _Optional[str] = ..., seconds: _Optional[str] = ..., size: _Optional[str] = ..., input_reference: _Optional[_Union[ImageReference, _Mapping]] = ..., routing: _Optional[_Union[_common_pb2.Routing, _Mapping]] = ..., extra_body: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class VideoError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Video(_message.Message):
    __slots__ = ("id", "object", "model", "status", "progress", "created_at", "completed_at", "expires_at", "prompt", "size", "seconds", "remixed_from_video_id", "error", "provider")
    ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    REMIXED_FROM_VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    id: str
    object: str
    model: str
    status: str
    progress: int
    created_at: int
    completed_at: int
    expires_at: int
    prompt: str
    size: str
    seconds: str
    remixed_from_video_id: str
    error: VideoError
    provider: str
    def __init__(self, id: _Optional[str] = ..., object: _Optional[str] = ..., model: _Optional[str] = ..., status: _Optional[str] = ..., progress: _Optional[int] = ..., created_at: _Optional[int] = ..., completed_at: _Optional[int] = ..., expires_at: _Optional[int] = ..., prompt: _Optional[str] = ..., size: _Optional[str] = ..., seconds: _Optional[str] = ..., remixed_from_video_id: _Optional[str] = ..., error: _Optional[_Union[VideoError, _Mapping]] = ..., provider: _Optional[str] = ...) -> None: ...

class CreateVideoRequest(_message.Message):
    __slots__ = ("params",)
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    params: VideoParams
    def __init__(self, params: _Optional[_Union[VideoParams, _Mapping]] = ...) -> None: ...

class CreateVideoResponse(_message.Message):
    __slots__ = ("video",)
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    video: Video
    def __init__(self, video: _Optional[_Union[Video, _Mapping]] = ...) -> None: ...

class GetVideoRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetVideoResponse(_message.Message):
    __slots__ = ("video",)
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    video: Video
    def __init__(self, video: _Optional[_Union[Video, _Mapping]] = ...) -> None: ...

class WatchVideoRequest(_message.Message):
    __slots__ = ("id", "poll_interval")
    ID_FIELD_NUMBER: _ClassVar[int]
    POLL_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    id: str
    poll_interval: float
    def __init__(self, id: _Optional[str] = ..., poll_interval: _Optional[float] = ...) -> None: ...

class WatchVideoResponse(_message.Message):
    __slots__ = ("video",)
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    video: Video
    def __init__(self, video: _Optional[_Union[Video, _Mapping]] = ...) -> None: ...

class DownloadVideoContentRequest(_message.Message):
    __slots__ = ("id", "variant")
    ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    id: str
    variant: str
    def __init__(self, id: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...

class DownloadVideoContentResponse(_message.Message):
    __slots__ = ("data", "content_type")
    DATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    content_type: str
    def __init__(self, data: _Optional[bytes] = ..., content_type: _Optional[str] = ...) -> None: ...
