"""Error answers of HubSpot's OAuth token endpoints (reference: OAuth §2).

Every version answers 400 with the Jan-2026 standard fields (`error`, `error_description`) next
to HubSpot's own (`status`, `message`), plus the usual `correlationId`:

    {"error": "invalid_grant", "error_description": "refresh token is invalid, expired or
     revoked", "status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token",
     "correlationId": "..."}
"""

from __future__ import annotations

from typing import Any


class OAuthError(Exception):
    """A token-endpoint failure: HTTP status, OAuth `error`, HubSpot `status` and texts."""

    def __init__(
        self, error: str, description: str, status: str, message: str, *, http_status: int = 400
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.error = error
        self.description = description
        self.status = status
        self.message = message
        self.http_status = http_status

    def body(self, cid: str) -> dict[str, Any]:
        """The JSON body."""
        return {
            "error": self.error,
            "error_description": self.description,
            "status": self.status,
            "message": self.message,
            "correlationId": cid,
        }


def bad_refresh_token() -> OAuthError:
    """Unknown, revoked, deleted or uninstalled refresh token (documented body)."""
    return OAuthError(
        "invalid_grant",
        "refresh token is invalid, expired or revoked",
        "BAD_REFRESH_TOKEN",
        "missing or invalid refresh token",
    )


def bad_auth_code() -> OAuthError:
    """Unknown or already used authorization code."""
    return OAuthError(
        "invalid_grant",
        "authorization code is invalid or was already used",
        "BAD_AUTH_CODE",
        "missing or unknown auth code",
    )


def expired_auth_code() -> OAuthError:
    """Authorization code past its life."""
    return OAuthError(
        "invalid_grant",
        "authorization code has expired",
        "EXPIRED_AUTH_CODE",
        "auth code is expired",
    )


def bad_redirect_uri() -> OAuthError:
    """redirect_uri differs from the one the code was issued for."""
    return OAuthError(
        "invalid_grant",
        "redirect_uri does not match the one used in the authorization request",
        "BAD_REDIRECT_URI",
        "redirect_uri mismatch",
    )


def bad_client_id() -> OAuthError:
    """Unknown client_id."""
    return OAuthError(
        "invalid_client", "client_id is invalid", "BAD_CLIENT_ID", "missing or unknown client id"
    )


def bad_client_secret() -> OAuthError:
    """client_secret does not belong to client_id."""
    return OAuthError(
        "invalid_client",
        "client authentication failed",
        "BAD_CLIENT_SECRET",
        "missing or invalid client secret",
    )


def unsupported_grant_type(grant_type: str | None) -> OAuthError:
    """A grant the sandbox does not emulate (client_credentials) or nonsense."""
    return OAuthError(
        "unsupported_grant_type",
        f"grant_type {grant_type!r} is not supported",
        "BAD_GRANT_TYPE",
        "grant_type must be authorization_code or refresh_token",
    )


def missing_parameter(name: str) -> OAuthError:
    """A required form field is absent."""
    return OAuthError(
        "invalid_request", f"missing required parameter {name}", "BAD_REQUEST", f"missing {name}"
    )
