"""HubSpot error bodies, and the exception handlers raise to answer one.

SandboxHTTPError          a handler's way to answer a HubSpot `Error` body with a status
(no other classes: per-input batch failures are values, see `standard_error`)
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from connector.sandbox.timefmt import iso_from_ms, ms_from_seconds

AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
SCOPES_MESSAGE = (
    "This app hasn't been granted all required scopes to make this call. Read more about "
    "required scopes here: https://developers.hubspot.com/scopes."
)

#: Sent with 401 INVALID_AUTHENTICATION answers (observed live).
AUTH_FAILURE_HEADERS = {"X-HubSpot-Auth-Failure": "401 Unauthorized"}


def correlation_id() -> str:
    """A fresh correlation id (uuid4)."""
    return str(uuid.uuid4())


class SandboxHTTPError(Exception):
    """A handler's way to answer with HubSpot's `Error` body and an HTTP status."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        context: dict[str, list[str]] | None = None,
        sub_category: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.errors = errors
        self.context = context
        self.sub_category = sub_category

    def body(self, cid: str) -> dict[str, Any]:
        """The JSON body (the spec's `Error` plus `status: "error"` as live HubSpot sends)."""
        out: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": cid,
            "category": self.category,
        }
        if self.sub_category:
            out["subCategory"] = self.sub_category
        if self.errors:
            out["errors"] = self.errors
        if self.context:
            out["context"] = self.context
        return out


def not_found(message: str) -> SandboxHTTPError:
    """404 OBJECT_NOT_FOUND."""
    return SandboxHTTPError(404, "OBJECT_NOT_FOUND", message)


def validation(message: str, *, field: str | None = None) -> SandboxHTTPError:
    """400 VALIDATION_ERROR, naming the offending field in errors[].in when known."""
    detail: dict[str, Any] = {"message": message}
    if field:
        detail["in"] = field
    return SandboxHTTPError(400, "VALIDATION_ERROR", message, errors=[detail])


def unauthenticated_body(cid: str) -> dict[str, Any]:
    """401 body for a missing or unknown token (observed live body)."""
    return {
        "status": "error",
        "message": AUTH_MESSAGE,
        "correlationId": cid,
        "category": "INVALID_AUTHENTICATION",
    }


def expired_authentication_body(cid: str, expired_at: float, now: float) -> dict[str, Any]:
    """401 body for an expired OAuth access token (observed live body)."""
    ago = max(0, math.floor(now - expired_at))
    return {
        "status": "error",
        "message": f"The OAuth token used to make this call expired {ago} second(s) ago.",
        "correlationId": cid,
        "category": "EXPIRED_AUTHENTICATION",
        "context": {"expire time": [iso_from_ms(ms_from_seconds(expired_at))]},
    }


def missing_scopes_body(cid: str, scopes: list[str]) -> dict[str, Any]:
    """403 body for a token without the operation's scope (observed live body)."""
    return {
        "status": "error",
        "message": SCOPES_MESSAGE,
        "correlationId": cid,
        "errors": [
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": scopes},
            }
        ],
        "links": {"scopes": "https://developers.hubspot.com/scopes"},
        "category": "MISSING_SCOPES",
    }


def rate_limit_body(
    cid: str, policy: str, app_id: int, portal_id: int, *, kind: str = "private_app"
) -> dict[str, Any]:
    """429 body (documented DAILY example; observed TEN_SECONDLY_ROLLING with groupName
    `publicapi:private_app-api-calls-ten-secondly:<app>:<portal>`; for OAuth installs the group
    is `publicapi:oauth-api-calls-ten-secondly:<app>:<hub>`, inferred)."""
    if policy == "DAILY":
        body: dict[str, Any] = {
            "status": "error",
            "message": "You have reached your daily limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": cid,
            "policyName": "DAILY",
            "requestId": correlation_id(),
        }
    else:
        body = {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": cid,
            "policyName": "TEN_SECONDLY_ROLLING",
            "groupName": f"publicapi:{kind}-api-calls-ten-secondly:{app_id}:{portal_id}",
            "requestId": correlation_id(),
        }
    return body


def server_error_body(cid: str, status: int) -> dict[str, Any]:
    """Body for injected 5xx answers (HubSpot edge errors carry no documented body)."""
    category = "INTERNAL_ERROR" if status == 500 else "SERVICE_UNAVAILABLE"
    if status < 500:
        category = "VALIDATION_ERROR"
    return {
        "status": "error",
        "message": f"Sandbox injected fault (HTTP {status}).",
        "correlationId": cid,
        "category": category,
    }


def standard_error(
    category: str, message: str, context: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """One per-input failure of a batch (`StandardError`: all six required fields present)."""
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context or {},
        "errors": [],
        "links": {},
    }
