"""The one error a codec raises: the JSON did not have the shape OpenAI documents."""

from __future__ import annotations


class CodecError(ValueError):
    """A body that does not match the schema; `param` names the offending field (e.g. `messages[0].role`)."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
