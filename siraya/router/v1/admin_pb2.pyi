from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KeyInfo(_message.Message):
    __slots__ = ("id", "name", "prefix", "created_at", "expires_at", "revoked_at", "allowed_models", "credit_limit", "credit_used", "rpm_limit", "tpm_limit")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_MODELS_FIELD_NUMBER: _ClassVar[int]
    CREDIT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    CREDIT_USED_FIELD_NUMBER: _ClassVar[int]
    RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    prefix: str
    created_at: int
    expires_at: int
    revoked_at: int
    allowed_models: _containers.RepeatedScalarFieldContainer[str]
    credit_limit: float
    credit_used: float
    rpm_limit: int
    tpm_limit: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., prefix: _Optional[str] = ..., created_at: _Optional[int] = ..., expires_at: _Optional[int] = ..., revoked_at: _Optional[int] = ..., allowed_models: _Optional[_Iterable[str]] = ..., credit_limit: _Optional[float] = ..., credit_used: _Optional[float] = ..., rpm_limit: _Optional[int] = ..., tpm_limit: _Optional[int] = ...) -> None: ...

class KeySpec(_message.Message):
    __slots__ = ("name", "expires_at", "allowed_models", "credit_limit", "rpm_limit", "tpm_limit")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_MODELS_FIELD_NUMBER: _ClassVar[int]
    CREDIT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    name: str
    expires_at: int
    allowed_models: _containers.RepeatedScalarFieldContainer[str]
    credit_limit: float
    rpm_limit: int
    tpm_limit: int
    def __init__(self, name: _Optional[str] = ..., expires_at: _Optional[int] = ..., allowed_models: _Optional[_Iterable[str]] = ..., credit_limit: _Optional[float] = ..., rpm_limit: _Optional[int] = ..., tpm_limit: _Optional[int] = ...) -> None: ...

class CreateKeyRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: KeySpec
    def __init__(self, spec: _Optional[_Union[KeySpec, _Mapping]] = ...) -> None: ...

class CreateKeyResponse(_message.Message):
    __slots__ = ("key", "secret")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    key: KeyInfo
    secret: str
    def __init__(self, key: _Optional[_Union[KeyInfo, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[KeyInfo]
    def __init__(self, keys: _Optional[_Iterable[_Union[KeyInfo, _Mapping]]] = ...) -> None: ...

class GetKeyRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: KeyInfo
    def __init__(self, key: _Optional[_Union[KeyInfo, _Mapping]] = ...) -> None: ...

class RevokeKeyRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RevokeKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: KeyInfo
    def __init__(self, key: _Optional[_Union[KeyInfo, _Mapping]] = ...) -> None: ...

class RotateKeyRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RotateKeyResponse(_message.Message):
    __slots__ = ("key", "secret")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    key: KeyInfo
    secret: str
    def __init__(self, key: _Optional[_Union[KeyInfo, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class SetCreditLimitRequest(_message.Message):
    __slots__ = ("id", "credit_limit")
    ID_FIELD_NUMBER: _ClassVar[int]
    CREDIT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    id: str
    credit_limit: float
    def __init__(self, id: _Optional[str] = ..., credit_limit: _Optional[float] = ...) -> None: ...

class SetCreditLimitResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: KeyInfo
    def __init__(self, key: _Optional[_Union[KeyInfo, _Mapping]] = ...) -> None: ...

class UpdateKeyRequest(_message.Message):
    __slots__ = ("id", "key", "update_mask")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    id: str
    key: KeySpec
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, id: _Optional[str] = ..., key: _Optional[_Union[KeySpec, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: KeyInfo
    def __init__(self, key: _Optional[_Union[KeyInfo, _Mapping]] = ...) -> None: ...

class GetCurrentKeyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCurrentKeyResponse(_message.Message):
    __slots__ = ("key", "usage", "reserved", "limit_remaining")
    KEY_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    LIMIT_REMAINING_FIELD_NUMBER: _ClassVar[int]
    key: KeyInfo
    usage: float
    reserved: float
    limit_remaining: float
    def __init__(self, key: _Optional[_Union[KeyInfo, _Mapping]] = ..., usage: _Optional[float] = ..., reserved: _Optional[float] = ..., limit_remaining: _Optional[float] = ...) -> None: ...

class GetGenerationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class Generation(_message.Message):
    __slots__ = ("id", "key_id", "created_at", "model", "model_served", "provider", "status", "http_status", "error_code", "tokens_prompt", "tokens_completion", "tokens_cached", "tokens_reasoning", "total_cost", "latency_ms", "ttft_ms", "streamed", "tokens_cache_write", "cache_saved")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_SERVED_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PROMPT_FIELD_NUMBER: _ClassVar[int]
    TOKENS_COMPLETION_FIELD_NUMBER: _ClassVar[int]
    TOKENS_CACHED_FIELD_NUMBER: _ClassVar[int]
    TOKENS_REASONING_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    STREAMED_FIELD_NUMBER: _ClassVar[int]
    TOKENS_CACHE_WRITE_FIELD_NUMBER: _ClassVar[int]
    CACHE_SAVED_FIELD_NUMBER: _ClassVar[int]
    id: str
    key_id: str
    created_at: float
    model: str
    model_served: str
    provider: str
    status: str
    http_status: int
    error_code: str
    tokens_prompt: int
    tokens_completion: int
    tokens_cached: int
    tokens_reasoning: int
    total_cost: float
    latency_ms: float
    ttft_ms: float
    streamed: bool
    tokens_cache_write: int
    cache_saved: float
    def __init__(self, id: _Optional[str] = ..., key_id: _Optional[str] = ..., created_at: _Optional[float] = ..., model: _Optional[str] = ..., model_served: _Optional[str] = ..., provider: _Optional[str] = ..., status: _Optional[str] = ..., http_status: _Optional[int] = ..., error_code: _Optional[str] = ..., tokens_prompt: _Optional[int] = ..., tokens_completion: _Optional[int] = ..., tokens_cached: _Optional[int] = ..., tokens_reasoning: _Optional[int] = ..., total_cost: _Optional[float] = ..., latency_ms: _Optional[float] = ..., ttft_ms: _Optional[float] = ..., streamed: _Optional[bool] = ..., tokens_cache_write: _Optional[int] = ..., cache_saved: _Optional[float] = ...) -> None: ...

class GetGenerationResponse(_message.Message):
    __slots__ = ("generation",)
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    generation: Generation
    def __init__(self, generation: _Optional[_Union[Generation, _Mapping]] = ...) -> None: ...
