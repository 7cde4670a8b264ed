"""HubSpotClient over httpx.MockTransport: errors, headers, partial batches, failures, secrets."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from connector.hubspot import (
    AuthenticationError,
    BatchResult,
    HubSpotClient,
    HubSpotConnectionError,
    HubSpotError,
    HubSpotTimeoutError,
    HubSpotTransportError,
    MarketingEventCreateRequestParams,
    MarketingEventEmailSubscriber,
    MarketingEventPublicUpdateRequestFullV2,
    MissingScopesError,
    NotFoundError,
    RateLimitedError,
    RateLimitStatus,
    ServerError,
    SubscriberState,
    UnexpectedResponseError,
    ValidationError,
    is_retriable,
)

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
CID = "8c1b3f0e-7a55-4a5e-9a59-3f0b7c1d2e4f"
RATE_HEADERS = {
    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    "X-HubSpot-RateLimit-Max": "100",
    "X-HubSpot-RateLimit-Remaining": "42",
    "X-HubSpot-RateLimit-Daily": "250000",
    "X-HubSpot-RateLimit-Daily-Remaining": "1234",
    "X-HubSpot-Correlation-Id": CID,
}
EVENT = {
    "objectId": "58237132332",
    "id": "58237132332",
    "eventName": "Winter webinar",
    "eventOrganizer": "Snowman Fellowship",
    "customProperties": [],
    "createdAt": "2024-08-07T12:58:40.635Z",
    "updatedAt": "2024-08-07T12:58:40.635Z",
}


class Recorder:
    """A MockTransport handler that records requests and answers from a script."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer = self.responses.pop(0) if self.responses else httpx.Response(200, json={})
        if isinstance(answer, Exception):
            raise answer
        return answer

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def _client(recorder: Recorder) -> HubSpotClient:
    return HubSpotClient(TOKEN, transport=httpx.MockTransport(recorder))


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers={**RATE_HEADERS, **(headers or {})})


def test_sends_bearer_token_and_json_headers() -> None:
    rec = Recorder(_json(200, EVENT))
    with _client(rec) as client:
        client.get_event_by_object_id("58237132332")
    assert rec.last.headers["Authorization"] == f"Bearer {TOKEN}"
    assert rec.last.headers["Accept"] == "application/json"
    assert rec.last.url.host == "api.hubapi.com"
    assert rec.last.url.scheme == "https"


def test_success_returns_value_status_rate_limit_and_correlation_id() -> None:
    rec = Recorder(_json(200, EVENT))
    client = _client(rec)
    response = client.upsert_event(
        MarketingEventCreateRequestParams(
            external_account_id="acct",
            external_event_id="evt",
            event_name="Winter webinar",
            event_organizer="Snowman Fellowship",
        )
    )
    assert response.status == 200
    assert response.value.object_id == "58237132332"
    assert response.correlation_id == CID
    assert response.rate_limit == RateLimitStatus(
        interval_ms=10000, max=100, remaining=42, daily=250000, daily_remaining=1234
    )
    assert client.last_rate_limit == response.rate_limit


def test_rate_limit_is_none_without_headers() -> None:
    rec = Recorder(httpx.Response(204))
    client = _client(rec)
    response = client.delete_event_by_object_id("1")
    assert response.value is None
    assert response.status == 204
    assert response.rate_limit is None
    assert client.last_rate_limit is None


AUTH_BODY = {
    "status": "error",
    "message": "Authentication credentials not found. This API supports OAuth 2.0 authentication "
    "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    "correlationId": CID,
    "category": "INVALID_AUTHENTICATION",
}


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (401, AUTH_BODY, AuthenticationError),
        (
            403,
            {
                "status": "error",
                "message": "This app hasn't been granted all required scopes",
                "correlationId": CID,
                "category": "MISSING_SCOPES",
                "errors": [
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {
                            "requiredGranularScopes": ["crm.objects.marketing_events.read"]
                        },
                    }
                ],
            },
            MissingScopesError,
        ),
        (
            404,
            {
                "status": "error",
                "message": "not found",
                "correlationId": CID,
                "category": "OBJECT_NOT_FOUND",
            },
            NotFoundError,
        ),
        (
            400,
            {
                "status": "error",
                "message": "bad",
                "correlationId": CID,
                "category": "VALIDATION_ERROR",
                "errors": [{"message": "required", "in": "eventName"}],
            },
            ValidationError,
        ),
        (
            503,
            {
                "status": "error",
                "message": "unavailable",
                "correlationId": CID,
                "category": "SERVICE_UNAVAILABLE",
            },
            ServerError,
        ),
    ],
)
def test_error_statuses_raise_typed_errors(
    status: int, body: dict[str, Any], cls: type[HubSpotError]
) -> None:
    rec = Recorder(_json(status, body))
    client = _client(rec)
    with pytest.raises(cls) as info:
        client.get_event(external_account_id="acct", external_event_id="evt")
    err = info.value
    assert err.status == status  # type: ignore[attr-defined]
    assert err.correlation_id == CID  # type: ignore[attr-defined]
    assert err.category == body["category"]  # type: ignore[attr-defined]
    assert err.rate_limit is not None and err.rate_limit.remaining == 42  # type: ignore[attr-defined]
    assert err.method == "GET"  # type: ignore[attr-defined]
    assert err.path == "/marketing/v3/marketing-events/events/evt?externalAccountId=acct"  # type: ignore[attr-defined]
    assert client.last_rate_limit is not None  # errors update the budget view too


def test_429_carries_policy_retry_after_and_rate_limit() -> None:
    body = {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": CID,
        "policyName": "TEN_SECONDLY_ROLLING",
        "groupName": "publicapi:private_app-api-calls-ten-secondly:1001:62515",
    }
    rec = Recorder(_json(429, body, {"Retry-After": "7", "X-HubSpot-RateLimit-Remaining": "0"}))
    with pytest.raises(RateLimitedError) as info:
        _client(rec).list_events()
    err = info.value
    assert err.policy_name == "TEN_SECONDLY_ROLLING"
    assert err.retry_after == 7.0
    assert err.rate_limit is not None and err.rate_limit.is_interval_exhausted
    assert is_retriable(err)


PARTIAL_UPDATE = {
    "status": "COMPLETE",
    "results": [
        {
            "objectId": "1",
            "eventName": "A",
            "customProperties": [],
            "createdAt": "2024-08-07T12:58:40.635Z",
            "updatedAt": "2024-08-07T12:58:40.635Z",
        }
    ],
    "errors": [
        {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": "Could not find marketing event 2",
            "context": {"ids": ["2"]},
            "errors": [],
            "links": {},
        }
    ],
    "numErrors": 1,
    "startedAt": "2024-08-07T12:58:40.000Z",
    "completedAt": "2024-08-07T12:58:41.000Z",
}


def test_207_partial_batch_is_a_value_not_an_exception() -> None:
    rec = Recorder(_json(207, PARTIAL_UPDATE))
    response = _client(rec).batch_update_events(
        [
            MarketingEventPublicUpdateRequestFullV2(object_id="1", event_name="A"),
            MarketingEventPublicUpdateRequestFullV2(object_id="2", event_name="B"),
        ]
    )
    assert response.status == 207
    batch = response.value
    assert isinstance(batch, BatchResult)
    assert batch.is_partial and batch.error_count == 1
    assert [r.object_id for r in batch.results] == ["1"]
    assert batch.errors[0].category == "OBJECT_NOT_FOUND"
    assert batch.errors[0].subject_ids() == ("2",)
    assert json.loads(rec.last.content) == {
        "inputs": [
            {"objectId": "1", "eventName": "A", "customProperties": []},
            {"objectId": "2", "eventName": "B", "customProperties": []},
        ]
    }


def test_partial_attendance_by_email_errors_as_values() -> None:
    body = {
        "status": "COMPLETE",
        "results": [{"email": "ok@example.com", "vid": 7}],
        "errors": [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "bad email",
                "context": {"emails": ["not-an-email"]},
                "errors": [],
                "links": {},
            }
        ],
        "numErrors": 1,
        "startedAt": "2024-05-22T13:38:16.500Z",
        "completedAt": "2024-05-22T13:38:16.900Z",
    }
    rec = Recorder(_json(207, body))
    response = _client(rec).record_attendance_by_email(
        "555",
        SubscriberState.REGISTER,
        [
            MarketingEventEmailSubscriber(email="ok@example.com", interaction_date_time=1),
            MarketingEventEmailSubscriber(email="not-an-email", interaction_date_time=1),
        ],
    )
    assert response.value.results[0].vid == 7
    assert response.value.errors[0].subject_ids() == ("not-an-email",)


def test_batch_archive_204_is_none_and_207_is_batch() -> None:
    rec = Recorder(httpx.Response(204), _json(207, {**PARTIAL_UPDATE, "results": []}))
    client = _client(rec)
    assert client.batch_archive_events(["1", "2"]).value is None
    assert json.loads(rec.last.content) == {"inputs": [{"objectId": "1"}, {"objectId": "2"}]}
    partial = client.batch_archive_events(["1", "2"]).value
    assert partial is not None and partial.error_count == 1


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (httpx.ConnectTimeout("slow"), HubSpotTimeoutError),
        (httpx.ReadTimeout("slow"), HubSpotTimeoutError),
        (httpx.WriteTimeout("slow"), HubSpotTimeoutError),
        (httpx.PoolTimeout("slow"), HubSpotTimeoutError),
        (httpx.ConnectError("refused"), HubSpotConnectionError),
        (httpx.ReadError("reset"), HubSpotConnectionError),
        (httpx.RemoteProtocolError("eof"), HubSpotConnectionError),
        (httpx.UnsupportedProtocol("ftp"), HubSpotTransportError),
    ],
)
def test_transport_failures_translated_once(exc: Exception, cls: type[HubSpotError]) -> None:
    rec = Recorder(exc)
    with pytest.raises(cls) as info:
        _client(rec).get_event_by_object_id("1")
    assert type(info.value) is cls
    assert info.value.__cause__ is exc
    assert is_retriable(info.value) is (cls is not HubSpotTransportError)
    assert "/marketing/v3/marketing-events/1" in str(info.value)


def test_garbage_2xx_body_is_unexpected_response() -> None:
    rec = Recorder(httpx.Response(200, text="<html>proxy</html>"), httpx.Response(200, json=[1]))
    client = _client(rec)
    with pytest.raises(UnexpectedResponseError) as info:
        client.get_event_by_object_id("1")
    assert info.value.status == 200
    with pytest.raises(UnexpectedResponseError):
        client.get_app_settings(1001)


def test_token_never_in_repr_str_exceptions_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = {**AUTH_BODY, "message": f"token {TOKEN} rejected for jane.doe@example.com"}
    rec = Recorder(
        _json(200, EVENT),
        _json(401, body),
        httpx.ConnectError(f"cannot connect for {TOKEN}"),
    )
    client = _client(rec)
    client.get_event_by_object_id("1")
    texts = [repr(client), str(client), repr(client._auth)]
    for call in (
        lambda: client.get_event_by_object_id("2"),
        lambda: client.get_event_by_object_id("3"),
    ):
        with pytest.raises(HubSpotError) as info:
            call()
        texts += [str(info.value), repr(info.value), str(info.value.args)]
    texts += [r.getMessage() for r in caplog.records]
    assert any("hubspot.response" in t for t in texts)
    assert any("hubspot.error" in t for t in texts)
    for text in texts:
        assert TOKEN not in text
        assert TOKEN[:-4] not in text
        assert "jane.doe@example.com" not in text


def test_emails_masked_in_logs_and_error_paths(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="connector.hubspot")
    rec = Recorder(_json(200, {"total": 0, "results": []}), _json(404, {"message": "nope"}))
    client = _client(rec)
    client.get_contact_participations("jane.doe@example.com")
    with pytest.raises(NotFoundError) as info:
        client.get_participation_breakdown(
            external_account_id="a", external_event_id="e", contact_identifier="jane@example.com"
        )
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "jane.doe" not in messages and "jane@example.com" not in messages
    assert "j***%40example.com" in messages
    assert "jane@example.com" not in str(info.value) and "jane%40example.com" not in str(info.value)


def test_token_validation() -> None:
    with pytest.raises(ValueError):
        HubSpotClient("")
    with pytest.raises(ValueError):
        HubSpotClient("abc\r\nX-Evil: 1")


def test_iter_events_follows_paging() -> None:
    page1 = {
        "results": [{**EVENT, "objectId": "1"}],
        "paging": {"next": {"after": "Mg==", "link": "https://api.hubapi.com/x?after=Mg=="}},
    }
    page2 = {"results": [{**EVENT, "objectId": "2"}]}
    rec = Recorder(_json(200, page1), _json(200, page2))
    ids = [e.object_id for e in _client(rec).iter_events(page_size=1)]
    assert ids == ["1", "2"]
    assert [dict(r.url.params) for r in rec.requests] == [
        {"limit": "1"},
        {"limit": "1", "after": "Mg=="},
    ]


def test_breakdown_limit_validated_before_sending() -> None:
    rec = Recorder()
    client = _client(rec)
    for bad in (0, 101):
        with pytest.raises(ValueError):
            client.get_participation_breakdown_by_object_id(1, limit=bad)
    assert rec.requests == []


def test_path_segments_are_percent_encoded() -> None:
    rec = Recorder(httpx.Response(204))
    _client(rec).delete_event(external_account_id="a b", external_event_id="web/inar?1")
    assert (
        rec.last.url.raw_path
        == b"/marketing/v3/marketing-events/events/web%2Finar%3F1?externalAccountId=a+b"
    )


def test_client_builds_with_defaults_and_custom_base_url() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"appId": 1, "eventDetailsUrl": "https://x/%s"})

    client = HubSpotClient(
        TOKEN, base_url="http://sandbox.local:8080", transport=httpx.MockTransport(handler)
    )
    assert client.get_app_settings(1).value.event_details_url == "https://x/%s"
    assert str(calls[0].url) == "http://sandbox.local:8080/marketing/v3/marketing-events/1/settings"
