"""The one exception tree of Inferplane.

Every error the gateway can answer with is an :class:`InferplaneError`; the API layer maps it
to the client's protocol at the boundary (``api/error_responses.py``). Vendor and library errors are
caught where they happen and re-raised as one of these (``raise X from exc``).
"""

from __future__ import annotations

from typing import Any


class InferplaneError(Exception):
    """Base of every error Inferplane raises on purpose."""

    status: int = 500
    type: str = "api_error"
    code: str | None = None
    # a routing refusal's record of why (the candidates turned away), for the ledger
    routing_reason: dict[str, Any] | None = None

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


class AuthenticationFailed(InferplaneError):
    """No API key, or one that is unknown, revoked or expired (HTTP 401). The message never
    repeats the key."""

    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(InferplaneError):
    """The key is valid but may not do this: a scope or model it lacks (HTTP 403)."""

    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFound(InferplaneError):
    """No such tenant, key or record, as far as the caller may know (HTTP 404)."""

    status = 404
    type = "not_found_error"
    code = "not_found"


class Conflict(InferplaneError):
    """The change conflicts with what exists: a duplicate name, a revoked key (HTTP 409)."""

    status = 409
    type = "invalid_request_error"
    code = "conflict"


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


class EngineStartError(InferplaneError):
    """A managed engine cannot be started: its program or package is missing, its model file
    does not exist, its port is taken. Said in one line when the gateway starts."""


class CounterUnavailable(InferplaneError):
    """This machine has no such energy counter (no GPU, or no NVML library)."""


class ConfigError(InferplaneError):
    """The configuration is invalid; ``problems`` lists each one with its location and a fix."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class RateLimited(InferplaneError):
    """Too many requests or tokens for a limit (HTTP 429); ``retry_after`` in seconds."""

    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None,
                 code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class BudgetExceeded(RateLimited):
    """The key's or tenant's budget for the period cannot cover the request (HTTP 429)."""

    type = "insufficient_quota"
    code = "budget_exceeded"


class ResidencyUnsatisfiable(InferplaneError):
    """No deployment inside the request's allowed regions can serve it (HTTP 403): the
    request is refused rather than sent out of its region."""

    status = 403
    type = "invalid_request_error"
    code = "residency_unsatisfiable"


class PriceCapExceeded(InvalidRequest):
    """Every deployment's expected cost is over the request's price cap (HTTP 400)."""

    code = "price_cap_exceeded"


class UpstreamError(InferplaneError):
    """An upstream answered with an error, sent something unreadable, or broke the connection.

    ``retryable`` says whether another attempt (here or on another deployment) may succeed;
    ``upstream_status`` is the upstream's HTTP status, when it sent one. The status the client
    sees comes from :func:`client_status`: the client's own mistakes pass through (400, 413),
    the gateway's (an upstream rejecting its credentials) become 502.
    """

    type = "upstream_error"
    code = "upstream_error"

    def __init__(self, message: str, *, upstream_status: int | None = None,
                 retryable: bool = False, retry_after: float | None = None,
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message, param=param, code=code)
        self.upstream_status = upstream_status
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = client_status(upstream_status)
        if self.status == 400:
            self.type = "invalid_request_error"
        elif self.status == 429:
            self.type = "rate_limit_error"


class UpstreamTimeout(UpstreamError):
    """The upstream did not connect, start or continue in time (HTTP 504)."""

    code = "upstream_timeout"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)
        self.status = 504


def client_status(upstream_status: int | None) -> int:
    """The status a client sees for an upstream's error status.

    >>> [client_status(s) for s in (400, 401, 404, 413, 422, 429, 500, 503, 529, None)]
    [400, 502, 502, 413, 400, 429, 502, 503, 503, 502]
    """
    if upstream_status in (400, 422):
        return 400
    if upstream_status in (413, 429):
        return upstream_status
    if upstream_status in (503, 529):
        return 503
    return 502


class GovernanceBlocked(ServiceUnavailable):
    """Every deployment that could serve the request is held back by governance: its version
    is not approved, is retired, or it (its model, its provider) is killed (HTTP 503). The
    message names the version or the kill and its reason."""

    code = "governance_blocked"


class GovernanceRefused(Conflict):
    """A lifecycle change the rules do not allow: a transition from the version's stage, an
    approval before the card is complete, a rollback with nothing to go back to (HTTP 409)."""

    code = "governance_refused"


class SelfApproval(PermissionDenied):
    """An approval by the identity that proposed the version (registered it or wrote its
    card): four eyes means someone else (HTTP 403)."""

    code = "self_approval"


class AuditLogCorrupt(InferplaneError):
    """The stored audit log is missing hashes it must hold: rows were deleted or edited
    (HTTP 500); ``inferplane audit verify`` names the entry."""

    code = "audit_log_corrupt"
