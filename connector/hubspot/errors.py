"""Errors raised by the HubSpot client.

ConnectorError
└── HubSpotError                      root of everything connector.hubspot raises     retriable?
    ├── HubSpotTransportError         no HTTP response at all (bad URL, protocol)      no
    │   ├── HubSpotTimeoutError       connect/read/write/pool timeout                  yes
    │   └── HubSpotConnectionError    connection refused/reset, network down           yes
    ├── HubSpotHTTPError              a non-2xx response (any other status)            no
    │   ├── ValidationError           400 VALIDATION_ERROR (see ``errors`` per input)  no
    │   ├── AuthenticationError       401 INVALID_AUTHENTICATION                       no
    │   ├── MissingScopesError        403 MISSING_SCOPES (``required_scopes``)         no
    │   ├── NotFoundError             404 (also: another app's external IDs)           no
    │   ├── ConflictError             409                                              no
    │   ├── LockedError               423 (locks last ~2 s)                            yes
    │   ├── RateLimitedError          429 (``policy_name``: TEN_SECONDLY_ROLLING/DAILY) yes
    │   ├── MigrationInProgressError  477 (``retry_after`` seconds)                    yes
    │   └── ServerError               5xx                                              yes
    ├── UnexpectedResponseError       a 2xx whose body is not the documented shape     no
    └── SignatureError                an incoming request's signature is not valid     no

Every :class:`HubSpotHTTPError` carries what a handler needs: ``status``, ``category``,
``message``, ``correlation_id``, per-input ``errors``, ``context``, ``retry_after`` (seconds),
``rate_limit`` (the response's :class:`RateLimitStatus`), ``method``/``path`` and the raw ``body``.
Partial batch failures (207) are *not* errors: they come back as values (``BatchResult.errors``).
Nothing here ever holds the access token; emails in messages are masked in ``str()``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import ClassVar

from pydantic import ValidationError as _PydanticValidationError

from connector.errors import ConnectorError
from connector.hubspot.models import ErrorBody, ErrorDetail
from connector.hubspot.ratelimit import RateLimitStatus, parse_retry_after
from connector.redact import mask_emails

CORRELATION_HEADER = "X-HubSpot-Correlation-Id"


class HubSpotError(ConnectorError):
    """Root of every error raised by connector.hubspot."""

    retriable: ClassVar[bool] = False


class HubSpotTransportError(HubSpotError):
    """The request got no HTTP response (translated from an httpx exception)."""

    def __init__(self, message: str, *, method: str, path: str) -> None:
        super().__init__(message)
        self.method = method
        self.path = path

    def __str__(self) -> str:
        return f"{self.args[0]} ({self.method} {self.path})"


class HubSpotTimeoutError(HubSpotTransportError):
    """Connect, read, write or pool timeout; the request may or may not have been applied."""

    retriable = True


class HubSpotConnectionError(HubSpotTransportError):
    """The connection could not be made or broke mid-exchange."""

    retriable = True


class HubSpotHTTPError(HubSpotError):
    """HubSpot answered with a non-2xx status; fields come from the Error body and headers."""

    def __init__(
        self,
        *,
        status: int,
        message: str,
        category: str | None = None,
        sub_category: str | None = None,
        correlation_id: str | None = None,
        errors: tuple[ErrorDetail, ...] = (),
        context: Mapping[str, list[str]] | None = None,
        retry_after: float | None = None,
        rate_limit: RateLimitStatus | None = None,
        method: str = "",
        path: str = "",
        body: bytes = b"",
    ) -> None:
        super().__init__(mask_emails(message))  # args are printed by tracebacks: masked
        self.status = status
        self.message = message
        self.category = category
        self.sub_category = sub_category
        self.correlation_id = correlation_id
        self.errors = errors
        self.context = dict(context or {})
        self.retry_after = retry_after
        self.rate_limit = rate_limit
        self.method = method
        self.path = path
        self.body = body

    def __str__(self) -> str:
        label = f"HTTP {self.status}" + (f" {self.category}" if self.category else "")
        where = f"{self.method} {self.path}".strip()
        message = mask_emails(self.message)
        return f"{label}: {message} (correlation_id={self.correlation_id}, {where})"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, category={self.category!r}, "
            f"correlation_id={self.correlation_id!r})"
        )


class ValidationError(HubSpotHTTPError):
    """400: the request body or parameters were rejected; ``errors`` names the fields."""


class AuthenticationError(HubSpotHTTPError):
    """401: the token is missing, invalid or expired."""


class MissingScopesError(HubSpotHTTPError):
    """403: the token lacks a scope; ``required_scopes`` lists what HubSpot asked for."""

    @property
    def required_scopes(self) -> tuple[str, ...]:
        """Scopes named by the body (``errors[].context.requiredGranularScopes`` and friends)."""
        scopes: list[str] = []
        for ctx in [self.context, *(e.context or {} for e in self.errors)]:
            for key in ("requiredGranularScopes", "requiredScopes", "missingScopes"):
                scopes.extend(ctx.get(key, ()))
        return tuple(dict.fromkeys(scopes))


class NotFoundError(HubSpotHTTPError):
    """404: no such event — or it exists but was created by another app (external-ID routes)."""


class ConflictError(HubSpotHTTPError):
    """409: the request conflicts with the current state (e.g. a duplicate create)."""


class LockedError(HubSpotHTTPError):
    """423: the record is locked by a high-volume sync; wait at least 2 s and retry."""

    retriable = True


class RateLimitedError(HubSpotHTTPError):
    """429: a rate limit was hit; ``policy_name`` says which (burst or daily)."""

    retriable = True
    policy_name: str | None = None
    group_name: str | None = None
    request_id: str | None = None

    @property
    def is_daily(self) -> bool:
        """True for the daily policy: retrying before the portal's midnight will not help."""
        return (self.policy_name or "").upper() == "DAILY"


class MigrationInProgressError(HubSpotHTTPError):
    """477: the portal is being migrated; wait ``retry_after`` seconds."""

    retriable = True


class ServerError(HubSpotHTTPError):
    """5xx: HubSpot or its edge failed; transient."""

    retriable = True


class UnexpectedResponseError(HubSpotError):
    """A 2xx response whose body is not valid JSON of the documented shape."""

    def __init__(self, message: str, *, status: int, method: str, path: str, body: bytes) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.path = path
        self.body = body

    def __str__(self) -> str:
        return f"{self.args[0]} (HTTP {self.status}, {self.method} {self.path})"


class SignatureError(HubSpotError):
    """An incoming HubSpot request failed validation; ``reason`` is a short machine word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


_BY_STATUS: dict[int, type[HubSpotHTTPError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: MissingScopesError,
    404: NotFoundError,
    409: ConflictError,
    423: LockedError,
    429: RateLimitedError,
    477: MigrationInProgressError,
}


def error_class_for(status: int) -> type[HubSpotHTTPError]:
    """The error class for a non-2xx status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if 500 <= status <= 599 else HubSpotHTTPError


def is_retriable(error: BaseException) -> bool:
    """True only for 429, 423, 477, 5xx, timeouts and connection errors."""
    return isinstance(error, HubSpotError) and error.retriable


def _parse_error_body(body: bytes) -> ErrorBody:
    try:
        data = json.loads(body) if body else {}
        if isinstance(data, dict):
            return ErrorBody.model_validate(data)
    except (ValueError, _PydanticValidationError):
        pass
    text = body[:200].decode("utf-8", "replace").strip()
    return ErrorBody(message=text)


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    method: str = "",
    path: str = "",
    rate_limit: RateLimitStatus | None = None,
) -> HubSpotHTTPError:
    """Build the right :class:`HubSpotHTTPError` from a non-2xx response (status, headers, body)."""
    parsed = _parse_error_body(body)
    error = error_class_for(status)(
        status=status,
        message=parsed.message or f"HTTP {status}",
        category=parsed.category or parsed.error_type,
        sub_category=parsed.sub_category,
        correlation_id=parsed.correlation_id or headers.get(CORRELATION_HEADER),
        errors=tuple(parsed.errors),
        context=parsed.context,
        retry_after=parse_retry_after(headers.get("Retry-After")),
        rate_limit=rate_limit,
        method=method,
        path=path,
        body=body,
    )
    if isinstance(error, RateLimitedError):
        error.policy_name = parsed.policy_name
        error.group_name = parsed.group_name
        error.request_id = parsed.request_id
    return error
