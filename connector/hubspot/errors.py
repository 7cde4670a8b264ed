"""Errors raised by the HubSpot client.

ConnectorError
└── HubSpotError                      root of everything connector.hubspot raises     retriable?
    ├── HubSpotTransportError         no HTTP response at all (bad URL, protocol)      no
    │   ├── HubSpotTimeoutError       connect/read/write/pool timeout                  yes
    │   └── HubSpotConnectionError    connection refused/reset, network down           yes
    ├── HubSpotHTTPError              a non-2xx response (any other status)            no
    │   ├── ValidationError           400 VALIDATION_ERROR (see ``errors`` per input)  no
    │   ├── AuthenticationError       401 INVALID_AUTHENTICATION                       no
    │   │   └── ExpiredAuthenticationError  401 EXPIRED_AUTHENTICATION: refresh        no
    │   ├── MissingScopesError        403 MISSING_SCOPES (``required_scopes``)         no
    │   ├── NotFoundError             404 (also: another app's external IDs)           no
    │   ├── ConflictError             409                                              no
    │   ├── LockedError               423 (locks last ~2 s)                            yes
    │   ├── RateLimitedError          429 (``policy_name``: TEN_SECONDLY_ROLLING/DAILY) yes
    │   ├── MigrationInProgressError  477 (``retry_after`` seconds)                    yes
    │   ├── ServerError               5xx                                              yes
    │   └── OAuthError                the token endpoint refused a grant (OAuth body)  no
    │       ├── RefreshTokenRevoked   invalid_grant on a refresh: uninstalled/revoked  no
    │       ├── AuthCodeRejected      invalid_grant on a code: expired, used, unknown  no
    │       └── OAuthClientRejected   invalid_client: the app's id or secret is wrong  no
    ├── UnexpectedResponseError       a 2xx whose body is not the documented shape     no
    └── SignatureError                an incoming request's signature is not valid     no

Every :class:`HubSpotHTTPError` carries what a handler needs: ``status``, ``category``,
``message``, ``correlation_id``, per-input ``errors``, ``context``, ``retry_after`` (seconds),
``rate_limit`` (the response's :class:`RateLimitStatus`), ``method``/``path`` and the raw ``body``.
:class:`OAuthError` adds the token endpoint's OAuth fields: ``error`` (``invalid_grant``, ...),
``error_description``, and HubSpot's own ``status`` word (``BAD_REFRESH_TOKEN``, ...) as
``category``. A 5xx, 429 or network failure of the token endpoint is the usual retriable class.
Partial batch failures (207) are *not* errors: they come back as values (``BatchResult.errors``).
Nothing here ever holds the access token; emails in messages are masked in ``str()``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import ValidationError as _PydanticValidationError

from connector.errors import ConnectorError
from connector.hubspot.models import ErrorBody, ErrorDetail
from connector.hubspot.ratelimit import RateLimitStatus, parse_retry_after
from connector.redact import mask_emails

CORRELATION_HEADER = "X-HubSpot-Correlation-Id"
#: The ``category`` of a 401 for an expired OAuth access token (reference OAuth §4); an unknown
#: or revoked one says ``INVALID_AUTHENTICATION``.
EXPIRED_AUTHENTICATION = "EXPIRED_AUTHENTICATION"
INVALID_AUTHENTICATION = "INVALID_AUTHENTICATION"


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

    @property
    def is_expired(self) -> bool:
        """True for HubSpot's ``EXPIRED_AUTHENTICATION``: an OAuth access token past its life."""
        return (self.category or "").upper() == EXPIRED_AUTHENTICATION


class ExpiredAuthenticationError(AuthenticationError):
    """401 EXPIRED_AUTHENTICATION: the OAuth access token expired; refresh it and retry once."""


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


class OAuthError(HubSpotHTTPError):
    """The token endpoint refused a grant; ``error`` is the OAuth code, ``category`` HubSpot's
    ``status`` word (``BAD_REFRESH_TOKEN``, ``EXPIRED_AUTH_CODE``, ...)."""

    def __init__(self, *, error: str | None = None, error_description: str | None = None,
                 **fields: Any) -> None:
        super().__init__(**fields)
        self.error = error
        self.error_description = error_description

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, error={self.error!r}, "
            f"category={self.category!r}, correlation_id={self.correlation_id!r})"
        )


class RefreshTokenRevoked(OAuthError):
    """A refresh was refused for good (``invalid_grant``, ``BAD_REFRESH_TOKEN``): the app was
    uninstalled or the refresh token revoked; only a new install helps."""


class AuthCodeRejected(OAuthError):
    """An authorization code was refused (``EXPIRED_AUTH_CODE``, ``BAD_AUTH_CODE``, a
    ``redirect_uri`` other than the authorize request's): the install must start over."""


class OAuthClientRejected(OAuthError):
    """``invalid_client``: the app's client id or secret is wrong; no grant can succeed until an
    operator fixes the settings (never a reason to mark an install revoked)."""


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


def is_expired_authentication(error: BaseException) -> bool:
    """True for a 401 ``EXPIRED_AUTHENTICATION``: refresh the access token, then retry once.

    False for ``INVALID_AUTHENTICATION`` (unknown or revoked token, a private-app token that was
    rotated): a refresh is no answer to that one (reference OAuth §4: "a 401 alone is no refresh
    signal")."""
    return isinstance(error, AuthenticationError) and error.is_expired


#: The grant an OAuth request asked for: the same ``invalid_grant`` means a revoked install on a
#: refresh and a spent code on an exchange.
GrantType = Literal["authorization_code", "refresh_token"]

_OAUTH_CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client"})
_CODE_STATUSES = frozenset({"BAD_AUTH_CODE", "EXPIRED_AUTH_CODE", "BAD_REDIRECT_URI"})
#: On a refresh: the refresh token, or the account it belongs to, is gone (reference OAuth §2).
_REVOKED_STATUSES = frozenset({"BAD_REFRESH_TOKEN", "BAD_HUB"})


def oauth_error_class(grant_type: GrantType, error: str | None,
                      status_word: str | None) -> type[OAuthError]:
    """The :class:`OAuthError` class for a 4xx token-endpoint answer's ``error`` and ``status``."""
    word = (status_word or "").upper()
    code = (error or "").lower()
    if code in _OAUTH_CLIENT_ERRORS or word in {"BAD_CLIENT_ID", "BAD_CLIENT_SECRET"}:
        return OAuthClientRejected
    if grant_type == "refresh_token" and (code in {"invalid_grant", "access_denied"}
                                          or word in _REVOKED_STATUSES):
        return RefreshTokenRevoked
    if grant_type == "authorization_code" and (code == "invalid_grant" or word in _CODE_STATUSES):
        return AuthCodeRejected
    return OAuthError


def oauth_error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    grant_type: GrantType,
    method: str = "POST",
    path: str = "",
) -> HubSpotHTTPError:
    """The error for a non-2xx token-endpoint answer: 5xx, 429 and other non-OAuth answers as
    :func:`error_from_response` makes them (retriable where it says so); a 4xx with an OAuth
    body as the :class:`OAuthError` subclass its ``error`` and ``status`` name.

    ``body`` must already be free of secrets (HubSpot does not echo them; callers scrub anyway).
    """
    data = _json_object(body)
    error = data.get("error")
    word = data.get("status")
    if not 400 <= status <= 499 or status == 429 or not (isinstance(error, str)
                                                          or _is_word(word)):
        return error_from_response(status, headers, body, method=method, path=path)
    description = data.get("error_description")
    message = data.get("message") or description or f"HTTP {status}"
    cls = oauth_error_class(grant_type, error if isinstance(error, str) else None,
                            word if isinstance(word, str) else None)
    return cls(
        status=status,
        message=str(message),
        category=word if isinstance(word, str) else None,
        correlation_id=_text(data.get("correlationId")) or headers.get(CORRELATION_HEADER),
        method=method,
        path=path,
        body=body,
        error=error if isinstance(error, str) else None,
        error_description=description if isinstance(description, str) else None,
    )


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _is_word(value: object) -> bool:
    """A HubSpot status word such as ``BAD_REFRESH_TOKEN`` (the ``"error"`` of API bodies is
    not one)."""
    return isinstance(value, str) and value.isupper() and value != "ERROR"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


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
    cls = error_class_for(status)
    if cls is AuthenticationError and (parsed.category or "").upper() == EXPIRED_AUTHENTICATION:
        cls = ExpiredAuthenticationError
    error = cls(
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
