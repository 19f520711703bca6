"""The one exception tree of Inferplane.

Every error the gateway can answer with is an :class:`InferplaneError`; the API layer maps it
to the client's protocol at the boundary (``api/errors.py``). Vendor and library errors are
caught where they happen and re-raised as one of these (``raise X from exc``).
"""

from __future__ import annotations


class InferplaneError(Exception):
    """Base of every error Inferplane raises on purpose."""

    status: int = 500
    type: str = "api_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(InferplaneError):
    """The request is malformed or a parameter is out of range (HTTP 400)."""

    status = 400
    type = "invalid_request_error"


class ContextLengthExceeded(InvalidRequest):
    """The prompt (plus the requested completion) does not fit the model's context window."""

    code = "context_length_exceeded"


class ModelNotFound(InferplaneError):
    """No model alias of that name is configured (HTTP 404)."""

    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class PayloadTooLarge(InvalidRequest):
    """The request body is larger than ``server.max_body_bytes`` (HTTP 413)."""

    status = 413
    code = "payload_too_large"


class ServiceUnavailable(InferplaneError):
    """No deployment can serve the request right now (HTTP 503)."""

    status = 503
    type = "service_unavailable"
    code = "engine_unavailable"


class EngineUnavailable(ServiceUnavailable):
    """The engine process is down, starting, or went away during the request."""


class ConfigError(InferplaneError):
    """The configuration is invalid; ``problems`` lists each one with its location and a fix."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []
