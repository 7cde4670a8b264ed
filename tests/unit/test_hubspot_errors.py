"""Error classes built from realistic HubSpot bodies (reference §4, §5, §6)."""

from __future__ import annotations

import json

import httpx
import pytest

from connector.errors import ConnectorError
from connector.hubspot.errors import (
    AuthenticationError,
    ConflictError,
    HubSpotConnectionError,
    HubSpotError,
    HubSpotHTTPError,
    HubSpotTimeoutError,
    HubSpotTransportError,
    LockedError,
    MigrationInProgressError,
    MissingScopesError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    SignatureError,
    UnexpectedResponseError,
    ValidationError,
    error_class_for,
    error_from_response,
    is_retriable,
)
from connector.hubspot.ratelimit import RateLimitStatus

CID = "a43683b0-5717-4ceb-80b4-104d02915d8c"

AUTH_401 = {
    "status": "error",
    "message": "Authentication credentials not found. This API supports OAuth 2.0 authentication "
    "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    "correlationId": CID,
    "category": "INVALID_AUTHENTICATION",
}
SCOPES_403 = {
    "status": "error",
    "message": "This app hasn't been granted all required scopes to make this call. Read more "
    "about required scopes here: https://developers.hubspot.com/scopes.",
    "correlationId": CID,
    "errors": [
        {
            "message": "One or more of the following scopes are required.",
            "context": {"requiredGranularScopes": ["crm.objects.marketing_events.write"]},
        }
    ],
    "links": {"scopes": "https://developers.hubspot.com/scopes"},
    "category": "MISSING_SCOPES",
}
VALIDATION_400 = {
    "status": "error",
    "message": "Property values were not valid",
    "errors": [{"message": "eventName is required", "in": "eventName", "code": "REQUIRED"}],
    "category": "VALIDATION_ERROR",
    "correlationId": CID,
    "context": {"invalidPropertyName": ["x"]},
}
NOT_FOUND_404 = {
    "status": "error",
    "message": "Marketing event not found",
    "correlationId": CID,
    "category": "OBJECT_NOT_FOUND",
}
DAILY_429 = {
    "status": "error",
    "message": "You have reached your daily limit.",
    "errorType": "RATE_LIMIT",
    "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24",
    "policyName": "DAILY",
    "requestId": "3d3e35b7-0dae-4b9f-a6e3-9c230cbcf8dd",
}
BURST_429 = {
    "status": "error",
    "message": "You have reached your ten_secondly_rolling limit.",
    "errorType": "RATE_LIMIT",
    "correlationId": CID,
    "policyName": "TEN_SECONDLY_ROLLING",
    "groupName": "publicapi:private_app-api-calls-ten-secondly:1001:62515",
}


def _build(status: int, body: object, headers: dict[str, str] | None = None) -> HubSpotHTTPError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return error_from_response(
        status, httpx.Headers(headers or {}), raw, method="POST", path="/marketing/v3/x"
    )


def test_tree_roots_at_connector_error() -> None:
    for cls in (HubSpotHTTPError, HubSpotTransportError, UnexpectedResponseError, SignatureError):
        assert issubclass(cls, HubSpotError)
    assert issubclass(HubSpotError, ConnectorError)
    assert issubclass(HubSpotTimeoutError, HubSpotTransportError)
    assert issubclass(HubSpotConnectionError, HubSpotTransportError)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, ValidationError),
        (401, AuthenticationError),
        (403, MissingScopesError),
        (404, NotFoundError),
        (409, ConflictError),
        (423, LockedError),
        (429, RateLimitedError),
        (477, MigrationInProgressError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (521, ServerError),
        (405, HubSpotHTTPError),
        (414, HubSpotHTTPError),
    ],
)
def test_status_maps_to_class(status: int, cls: type[HubSpotHTTPError]) -> None:
    assert error_class_for(status) is cls
    assert type(_build(status, {"message": "m"})) is cls


def test_401_carries_category_and_correlation_id() -> None:
    err = _build(401, AUTH_401)
    assert isinstance(err, AuthenticationError)
    assert err.status == 401
    assert err.category == "INVALID_AUTHENTICATION"
    assert err.correlation_id == CID
    assert err.message.startswith("Authentication credentials not found")
    assert not is_retriable(err)


def test_403_exposes_required_scopes() -> None:
    err = _build(403, SCOPES_403)
    assert isinstance(err, MissingScopesError)
    assert err.category == "MISSING_SCOPES"
    assert err.required_scopes == ("crm.objects.marketing_events.write",)
    assert err.errors[0].message == "One or more of the following scopes are required."


def test_400_carries_per_field_errors_and_context() -> None:
    err = _build(400, VALIDATION_400)
    assert isinstance(err, ValidationError)
    assert [(e.in_, e.code, e.message) for e in err.errors] == [
        ("eventName", "REQUIRED", "eventName is required")
    ]
    assert err.context == {"invalidPropertyName": ["x"]}


def test_404_not_found() -> None:
    err = _build(404, NOT_FOUND_404)
    assert isinstance(err, NotFoundError)
    assert err.category == "OBJECT_NOT_FOUND"
    assert not is_retriable(err)


def test_429_daily_policy() -> None:
    err = _build(429, DAILY_429)
    assert isinstance(err, RateLimitedError)
    assert err.policy_name == "DAILY"
    assert err.is_daily
    assert err.category == "RATE_LIMIT"  # from errorType when category is absent
    assert err.correlation_id == "c033cdaa-2c40-4a64-ae48-b4cec88dad24"
    assert err.request_id == "3d3e35b7-0dae-4b9f-a6e3-9c230cbcf8dd"
    assert is_retriable(err)


def test_429_burst_policy_with_retry_after_and_rate_limit() -> None:
    status = RateLimitStatus(interval_ms=10000, max=100, remaining=0)
    err = error_from_response(
        429, httpx.Headers({"Retry-After": "3"}), json.dumps(BURST_429).encode(), rate_limit=status
    )
    assert isinstance(err, RateLimitedError)
    assert err.policy_name == "TEN_SECONDLY_ROLLING"
    assert err.group_name == "publicapi:private_app-api-calls-ten-secondly:1001:62515"
    assert not err.is_daily
    assert err.retry_after == 3.0
    assert err.rate_limit is status


def test_477_retry_after_seconds() -> None:
    err = _build(477, {"message": "Migration in progress"}, {"Retry-After": "120"})
    assert isinstance(err, MigrationInProgressError)
    assert err.retry_after == 120.0
    assert is_retriable(err)


@pytest.mark.parametrize("status", [423, 429, 477, 500, 502, 503, 504, 599])
def test_retriable_statuses(status: int) -> None:
    assert is_retriable(_build(status, {"message": "x"}))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 413, 414, 422])
def test_non_retriable_statuses(status: int) -> None:
    assert not is_retriable(_build(status, {"message": "x"}))


def test_transport_errors_retriable_only_for_timeouts_and_connections() -> None:
    assert is_retriable(HubSpotTimeoutError("t", method="GET", path="/"))
    assert is_retriable(HubSpotConnectionError("c", method="GET", path="/"))
    assert not is_retriable(HubSpotTransportError("x", method="GET", path="/"))
    assert not is_retriable(ValueError("not ours"))


def test_correlation_id_falls_back_to_header_and_non_json_body() -> None:
    err = _build(502, b"<html>Bad gateway</html>", {"X-HubSpot-Correlation-Id": "hdr-cid"})
    assert isinstance(err, ServerError)
    assert err.correlation_id == "hdr-cid"
    assert err.message == "<html>Bad gateway</html>"
    assert err.category is None
    assert err.body == b"<html>Bad gateway</html>"


def test_empty_body_gets_status_message() -> None:
    err = _build(503, b"")
    assert err.message == "HTTP 503"


def test_str_masks_emails_and_names_request() -> None:
    err = _build(400, {"message": "Contact john.doe@example.com is invalid", "correlationId": CID})
    text = str(err)
    assert "john.doe@example.com" not in text
    assert "j***@example.com" in text
    assert CID in text
    assert "POST /marketing/v3/x" in text
    assert err.message == "Contact john.doe@example.com is invalid"  # raw kept for handlers
