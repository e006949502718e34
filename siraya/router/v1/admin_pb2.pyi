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
