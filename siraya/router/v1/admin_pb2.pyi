from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BudgetPeriod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUDGET_PERIOD_UNSPECIFIED: _ClassVar[BudgetPeriod]
    BUDGET_PERIOD_DAY: _ClassVar[BudgetPeriod]
    BUDGET_PERIOD_WEEK: _ClassVar[BudgetPeriod]
    BUDGET_PERIOD_MONTH: _ClassVar[BudgetPeriod]

class BudgetReset(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUDGET_RESET_UNSPECIFIED: _ClassVar[BudgetReset]
    BUDGET_RESET_CALENDAR: _ClassVar[BudgetReset]
    BUDGET_RESET_ROLLING: _ClassVar[BudgetReset]

class UsageGroup(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USAGE_GROUP_UNSPECIFIED: _ClassVar[UsageGroup]
    USAGE_GROUP_KEY: _ClassVar[UsageGroup]
    USAGE_GROUP_MODEL: _ClassVar[UsageGroup]
    USAGE_GROUP_PROVIDER: _ClassVar[UsageGroup]

class UsageBucket(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USAGE_BUCKET_UNSPECIFIED: _ClassVar[UsageBucket]
    USAGE_BUCKET_MINUTE: _ClassVar[UsageBucket]
    USAGE_BUCKET_HOUR: _ClassVar[UsageBucket]
    USAGE_BUCKET_DAY: _ClassVar[UsageBucket]
BUDGET_PERIOD_UNSPECIFIED: BudgetPeriod
BUDGET_PERIOD_DAY: BudgetPeriod
BUDGET_PERIOD_WEEK: BudgetPeriod
BUDGET_PERIOD_MONTH: BudgetPeriod
BUDGET_RESET_UNSPECIFIED: BudgetReset
BUDGET_RESET_CALENDAR: BudgetReset
BUDGET_RESET_ROLLING: BudgetReset
USAGE_GROUP_UNSPECIFIED: UsageGroup
USAGE_GROUP_KEY: UsageGroup
USAGE_GROUP_MODEL: UsageGroup
USAGE_GROUP_PROVIDER: UsageGroup
USAGE_BUCKET_UNSPECIFIED: UsageBucket
USAGE_BUCKET_MINUTE: UsageBucket
USAGE_BUCKET_HOUR: UsageBucket
USAGE_BUCKET_DAY: UsageBucket

class KeyInfo(_message.Message):
    __slots__ = ("id", "name", "prefix", "created_at", "expires_at", "revoked_at", "allowed_models", "credit_limit", "credit_used", "rpm_limit", "tpm_limit", "cache_namespace", "team_id", "budget", "budget_status")
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
    CACHE_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    BUDGET_STATUS_FIELD_NUMBER: _ClassVar[int]
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
    cache_namespace: str
    team_id: str
    budget: Budget
    budget_status: BudgetStatus
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., prefix: _Optional[str] = ..., created_at: _Optional[int] = ..., expires_at: _Optional[int] = ..., revoked_at: _Optional[int] = ..., allowed_models: _Optional[_Iterable[str]] = ..., credit_limit: _Optional[float] = ..., credit_used: _Optional[float] = ..., rpm_limit: _Optional[int] = ..., tpm_limit: _Optional[int] = ..., cache_namespace: _Optional[str] = ..., team_id: _Optional[str] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ..., budget_status: _Optional[_Union[BudgetStatus, _Mapping]] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("limit", "period", "reset")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    limit: float
    period: BudgetPeriod
    reset: BudgetReset
    def __init__(self, limit: _Optional[float] = ..., period: _Optional[_Union[BudgetPeriod, str]] = ..., reset: _Optional[_Union[BudgetReset, str]] = ...) -> None: ...

class BudgetStatus(_message.Message):
    __slots__ = ("spent", "reserved", "remaining", "window_start", "resets_at")
    SPENT_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    RESETS_AT_FIELD_NUMBER: _ClassVar[int]
    spent: float
    reserved: float
    remaining: float
    window_start: float
    resets_at: float
    def __init__(self, spent: _Optional[float] = ..., reserved: _Optional[float] = ..., remaining: _Optional[float] = ..., window_start: _Optional[float] = ..., resets_at: _Optional[float] = ...) -> None: ...

class TeamSpec(_message.Message):
    __slots__ = ("name", "credit_limit", "budget", "rpm_limit", "tpm_limit")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREDIT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    name: str
    credit_limit: float
    budget: Budget
    rpm_limit: int
    tpm_limit: int
    def __init__(self, name: _Optional[str] = ..., credit_limit: _Optional[float] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ..., rpm_limit: _Optional[int] = ..., tpm_limit: _Optional[int] = ...) -> None: ...

class TeamInfo(_message.Message):
    __slots__ = ("id", "name", "created_at", "credit_limit", "credit_used", "credit_reserved", "budget", "budget_status", "rpm_limit", "tpm_limit")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREDIT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    CREDIT_USED_FIELD_NUMBER: _ClassVar[int]
    CREDIT_RESERVED_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    BUDGET_STATUS_FIELD_NUMBER: _ClassVar[int]
    RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    created_at: int
    credit_limit: float
    credit_used: float
    credit_reserved: float
    budget: Budget
    budget_status: BudgetStatus
    rpm_limit: int
    tpm_limit: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., created_at: _Optional[int] = ..., credit_limit: _Optional[float] = ..., credit_used: _Optional[float] = ..., credit_reserved: _Optional[float] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ..., budget_status: _Optional[_Union[BudgetStatus, _Mapping]] = ..., rpm_limit: _Optional[int] = ..., tpm_limit: _Optional[int] = ...) -> None: ...

class KeySpec(_message.Message):
    __slots__ = ("name", "expires_at", "allowed_models", "credit_limit", "rpm_limit", "tpm_limit", "cache_namespace", "team_id", "budget")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_MODELS_FIELD_NUMBER: _ClassVar[int]
    CREDIT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    RPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    TPM_LIMIT_FIELD_NUMBER: _ClassVar[int]
    CACHE_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    name: str
    expires_at: int
    allowed_models: _containers.RepeatedScalarFieldContainer[str]
    credit_limit: float
    rpm_limit: int
    tpm_limit: int
    cache_namespace: str
    team_id: str
    budget: Budget
    def __init__(self, name: _Optional[str] = ..., expires_at: _Optional[int] = ..., allowed_models: _Optional[_Iterable[str]] = ..., credit_limit: _Optional[float] = ..., rpm_limit: _Optional[int] = ..., tpm_limit: _Optional[int] = ..., cache_namespace: _Optional[str] = ..., team_id: _Optional[str] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("key", "usage", "reserved", "limit_remaining", "team")
    KEY_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    LIMIT_REMAINING_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    key: KeyInfo
    usage: float
    reserved: float
    limit_remaining: float
    team: TeamInfo
    def __init__(self, key: _Optional[_Union[KeyInfo, _Mapping]] = ..., usage: _Optional[float] = ..., reserved: _Optional[float] = ..., limit_remaining: _Optional[float] = ..., team: _Optional[_Union[TeamInfo, _Mapping]] = ...) -> None: ...

class CreateTeamRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: TeamSpec
    def __init__(self, spec: _Optional[_Union[TeamSpec, _Mapping]] = ...) -> None: ...

class CreateTeamResponse(_message.Message):
    __slots__ = ("team",)
    TEAM_FIELD_NUMBER: _ClassVar[int]
    team: TeamInfo
    def __init__(self, team: _Optional[_Union[TeamInfo, _Mapping]] = ...) -> None: ...

class ListTeamsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTeamsResponse(_message.Message):
    __slots__ = ("teams",)
    TEAMS_FIELD_NUMBER: _ClassVar[int]
    teams: _containers.RepeatedCompositeFieldContainer[TeamInfo]
    def __init__(self, teams: _Optional[_Iterable[_Union[TeamInfo, _Mapping]]] = ...) -> None: ...

class GetTeamRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetTeamResponse(_message.Message):
    __slots__ = ("team",)
    TEAM_FIELD_NUMBER: _ClassVar[int]
    team: TeamInfo
    def __init__(self, team: _Optional[_Union[TeamInfo, _Mapping]] = ...) -> None: ...

class UpdateTeamRequest(_message.Message):
    __slots__ = ("id", "team", "update_mask")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    id: str
    team: TeamSpec
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, id: _Optional[str] = ..., team: _Optional[_Union[TeamSpec, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateTeamResponse(_message.Message):
    __slots__ = ("team",)
    TEAM_FIELD_NUMBER: _ClassVar[int]
    team: TeamInfo
    def __init__(self, team: _Optional[_Union[TeamInfo, _Mapping]] = ...) -> None: ...

class DeleteTeamRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteTeamResponse(_message.Message):
    __slots__ = ("id", "deleted")
    ID_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    id: str
    deleted: bool
    def __init__(self, id: _Optional[str] = ..., deleted: _Optional[bool] = ...) -> None: ...

class GetGenerationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class Generation(_message.Message):
    __slots__ = ("id", "key_id", "created_at", "model", "model_served", "provider", "status", "http_status", "error_code", "tokens_prompt", "tokens_completion", "tokens_cached", "tokens_reasoning", "total_cost", "latency_ms", "ttft_ms", "streamed", "tokens_cache_write", "cache_saved", "token_source", "attempts", "prompt_text", "answer_text", "upstream_cost", "upstream_reported_cost")
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
    TOKEN_SOURCE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TEXT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_TEXT_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_COST_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_REPORTED_COST_FIELD_NUMBER: _ClassVar[int]
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
    token_source: str
    attempts: _containers.RepeatedCompositeFieldContainer[GenerationAttempt]
    prompt_text: str
    answer_text: str
    upstream_cost: float
    upstream_reported_cost: float
    def __init__(self, id: _Optional[str] = ..., key_id: _Optional[str] = ..., created_at: _Optional[float] = ..., model: _Optional[str] = ..., model_served: _Optional[str] = ..., provider: _Optional[str] = ..., status: _Optional[str] = ..., http_status: _Optional[int] = ..., error_code: _Optional[str] = ..., tokens_prompt: _Optional[int] = ..., tokens_completion: _Optional[int] = ..., tokens_cached: _Optional[int] = ..., tokens_reasoning: _Optional[int] = ..., total_cost: _Optional[float] = ..., latency_ms: _Optional[float] = ..., ttft_ms: _Optional[float] = ..., streamed: _Optional[bool] = ..., tokens_cache_write: _Optional[int] = ..., cache_saved: _Optional[float] = ..., token_source: _Optional[str] = ..., attempts: _Optional[_Iterable[_Union[GenerationAttempt, _Mapping]]] = ..., prompt_text: _Optional[str] = ..., answer_text: _Optional[str] = ..., upstream_cost: _Optional[float] = ..., upstream_reported_cost: _Optional[float] = ...) -> None: ...

class GenerationAttempt(_message.Message):
    __slots__ = ("provider", "model", "upstream_model", "outcome", "start_ms", "latency_ms", "error_code", "http_status", "tokens_prompt", "tokens_completion", "upstream_cost", "upstream_reported_cost", "token_source")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_MODEL_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PROMPT_FIELD_NUMBER: _ClassVar[int]
    TOKENS_COMPLETION_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_COST_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_REPORTED_COST_FIELD_NUMBER: _ClassVar[int]
    TOKEN_SOURCE_FIELD_NUMBER: _ClassVar[int]
    provider: str
    model: str
    upstream_model: str
    outcome: str
    start_ms: float
    latency_ms: float
    error_code: str
    http_status: int
    tokens_prompt: int
    tokens_completion: int
    upstream_cost: float
    upstream_reported_cost: float
    token_source: str
    def __init__(self, provider: _Optional[str] = ..., model: _Optional[str] = ..., upstream_model: _Optional[str] = ..., outcome: _Optional[str] = ..., start_ms: _Optional[float] = ..., latency_ms: _Optional[float] = ..., error_code: _Optional[str] = ..., http_status: _Optional[int] = ..., tokens_prompt: _Optional[int] = ..., tokens_completion: _Optional[int] = ..., upstream_cost: _Optional[float] = ..., upstream_reported_cost: _Optional[float] = ..., token_source: _Optional[str] = ...) -> None: ...

class GenerationFilter(_message.Message):
    __slots__ = ("key_id", "model", "provider", "status", "since", "until", "min_cost", "max_cost")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    MIN_COST_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    model: str
    provider: str
    status: str
    since: float
    until: float
    min_cost: float
    max_cost: float
    def __init__(self, key_id: _Optional[str] = ..., model: _Optional[str] = ..., provider: _Optional[str] = ..., status: _Optional[str] = ..., since: _Optional[float] = ..., until: _Optional[float] = ..., min_cost: _Optional[float] = ..., max_cost: _Optional[float] = ...) -> None: ...

class ListGenerationsRequest(_message.Message):
    __slots__ = ("filter", "limit", "cursor")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    filter: GenerationFilter
    limit: int
    cursor: str
    def __init__(self, filter: _Optional[_Union[GenerationFilter, _Mapping]] = ..., limit: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class ListGenerationsResponse(_message.Message):
    __slots__ = ("generations", "has_more", "next_cursor")
    GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    generations: _containers.RepeatedCompositeFieldContainer[Generation]
    has_more: bool
    next_cursor: str
    def __init__(self, generations: _Optional[_Iterable[_Union[Generation, _Mapping]]] = ..., has_more: _Optional[bool] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("filter", "group_by", "bucket")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    filter: GenerationFilter
    group_by: UsageGroup
    bucket: UsageBucket
    def __init__(self, filter: _Optional[_Union[GenerationFilter, _Mapping]] = ..., group_by: _Optional[_Union[UsageGroup, str]] = ..., bucket: _Optional[_Union[UsageBucket, str]] = ...) -> None: ...

class UsageRow(_message.Message):
    __slots__ = ("bucket_start", "group", "requests", "prompt_tokens", "completion_tokens", "cost", "errors", "p50_latency_ms", "p95_latency_ms", "upstream_cost")
    BUCKET_START_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    P50_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    P95_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_COST_FIELD_NUMBER: _ClassVar[int]
    bucket_start: float
    group: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    errors: int
    p50_latency_ms: float
    p95_latency_ms: float
    upstream_cost: float
    def __init__(self, bucket_start: _Optional[float] = ..., group: _Optional[str] = ..., requests: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cost: _Optional[float] = ..., errors: _Optional[int] = ..., p50_latency_ms: _Optional[float] = ..., p95_latency_ms: _Optional[float] = ..., upstream_cost: _Optional[float] = ...) -> None: ...

class GetUsageResponse(_message.Message):
    __slots__ = ("rows", "since", "until")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[UsageRow]
    since: float
    until: float
    def __init__(self, rows: _Optional[_Iterable[_Union[UsageRow, _Mapping]]] = ..., since: _Optional[float] = ..., until: _Optional[float] = ...) -> None: ...

class ListProvidersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DeploymentStatus(_message.Message):
    __slots__ = ("model", "provider", "upstream_model", "deployment", "breaker_state", "latency_ms", "throughput", "error_rate", "attempts", "failures")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_MODEL_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    BREAKER_STATE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    model: str
    provider: str
    upstream_model: str
    deployment: str
    breaker_state: str
    latency_ms: float
    throughput: float
    error_rate: float
    attempts: int
    failures: int
    def __init__(self, model: _Optional[str] = ..., provider: _Optional[str] = ..., upstream_model: _Optional[str] = ..., deployment: _Optional[str] = ..., breaker_state: _Optional[str] = ..., latency_ms: _Optional[float] = ..., throughput: _Optional[float] = ..., error_rate: _Optional[float] = ..., attempts: _Optional[int] = ..., failures: _Optional[int] = ...) -> None: ...

class ListProvidersResponse(_message.Message):
    __slots__ = ("deployments",)
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    deployments: _containers.RepeatedCompositeFieldContainer[DeploymentStatus]
    def __init__(self, deployments: _Optional[_Iterable[_Union[DeploymentStatus, _Mapping]]] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("id", "at", "actor", "action", "target", "source", "via", "detail_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VIA_FIELD_NUMBER: _ClassVar[int]
    DETAIL_JSON_FIELD_NUMBER: _ClassVar[int]
    id: int
    at: float
    actor: str
    action: str
    target: str
    source: str
    via: str
    detail_json: str
    def __init__(self, id: _Optional[int] = ..., at: _Optional[float] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., target: _Optional[str] = ..., source: _Optional[str] = ..., via: _Optional[str] = ..., detail_json: _Optional[str] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("limit", "before_id")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    BEFORE_ID_FIELD_NUMBER: _ClassVar[int]
    limit: int
    before_id: int
    def __init__(self, limit: _Optional[int] = ..., before_id: _Optional[int] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ...) -> None: ...

class GetGenerationResponse(_message.Message):
    __slots__ = ("generation",)
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    generation: Generation
    def __init__(self, generation: _Optional[_Union[Generation, _Mapping]] = ...) -> None: ...
