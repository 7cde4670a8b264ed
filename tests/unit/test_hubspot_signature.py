"""Request signatures against the reference §7 test vectors, and the 5-minute window."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from connector.hubspot.errors import SignatureError
from connector.hubspot.signature import (
    is_valid_request,
    normalize_v3_uri,
    sign_v1,
    sign_v2,
    sign_v3,
    signed_headers_v3,
    verify_request,
    verify_v1,
    verify_v2,
    verify_v3,
)

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
TS = 1700000000000
GET_URI = "https://my.event.app/events/1234-event-XYZ?appId=101&externalAccountId=ABC-account-789"
GET_SIG = "BogJm3X5yX+dkf7jaY7/7zb7H70LfhbrZoRzRhFz4bc="
POST_URI = "https://www.example.com/webhook_uri"
POST_BODY = '{"example_field":"example_value"}'
POST_SIG = "rQEKkaNUiu+1qGF//O/pw4BCzstSqO1PyUnGICmf+7o="
V1_BODY = (
    '[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    '"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
    '"changeFlag":"NEW","appId":54321}]'
)
V1_SIG = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
V2_SIG = "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"


def _at(ms: int) -> Callable[[], int]:
    return lambda: ms


def test_v3_get_vector() -> None:
    assert sign_v3(SECRET, method="GET", uri=GET_URI, body="", timestamp=TS) == GET_SIG


def test_v3_post_vector() -> None:
    assert sign_v3(SECRET, method="POST", uri=POST_URI, body=POST_BODY, timestamp=TS) == POST_SIG
    assert (
        sign_v3(SECRET, method="POST", uri=POST_URI, body=POST_BODY.encode(), timestamp=str(TS))
        == POST_SIG
    )


def test_v1_vector() -> None:
    assert sign_v1(SECRET, body=V1_BODY) == V1_SIG
    verify_v1(SECRET, signature=V1_SIG, body=V1_BODY)


def test_v2_vector() -> None:
    assert sign_v2(SECRET, method="GET", uri=POST_URI, body="") == V2_SIG
    verify_v2(SECRET, signature=V2_SIG, method="GET", uri=POST_URI, body="")


def test_v3_verify_accepts_within_window() -> None:
    for now in (TS, TS + 300_000, TS - 300_000):
        verify_v3(
            SECRET,
            signature=GET_SIG,
            method="GET",
            uri=GET_URI,
            body="",
            timestamp=TS,
            now_ms=_at(now),
        )


@pytest.mark.parametrize("now", [TS + 300_001, TS - 300_001, TS + 3_600_000])
def test_v3_rejects_outside_five_minute_window(now: int) -> None:
    with pytest.raises(SignatureError) as info:
        verify_v3(
            SECRET,
            signature=GET_SIG,
            method="GET",
            uri=GET_URI,
            body="",
            timestamp=TS,
            now_ms=_at(now),
        )
    assert info.value.reason == "expired"


def test_v3_rejects_tampering() -> None:
    with pytest.raises(SignatureError) as info:
        verify_v3(
            SECRET,
            signature=GET_SIG,
            method="GET",
            uri=GET_URI + "&x=1",
            body="",
            timestamp=TS,
            now_ms=_at(TS),
        )
    assert info.value.reason == "mismatch"
    with pytest.raises(SignatureError):
        verify_v3(
            "other-secret",
            signature=GET_SIG,
            method="GET",
            uri=GET_URI,
            body="",
            timestamp=TS,
            now_ms=_at(TS),
        )


def test_v3_malformed_timestamp() -> None:
    with pytest.raises(SignatureError) as info:
        verify_v3(
            SECRET,
            signature=GET_SIG,
            method="GET",
            uri=GET_URI,
            body="",
            timestamp="yesterday",
            now_ms=_at(TS),
        )
    assert info.value.reason == "malformed"


def test_v3_uri_decoding_applies_only_listed_sequences() -> None:
    assert normalize_v3_uri("https://a.b/x%3Ay%2Fz%40w%20v") == "https://a.b/x:y/z@w%20v"
    encoded = GET_URI.replace("://", "%3A%2F%2F", 1)
    assert sign_v3(SECRET, method="GET", uri=encoded, body="", timestamp=TS) == GET_SIG


def test_verify_request_dispatches_by_headers() -> None:
    v3 = httpx.Headers({"X-HubSpot-Signature-v3": GET_SIG, "X-HubSpot-Request-Timestamp": str(TS)})
    assert (
        verify_request(SECRET, method="GET", uri=GET_URI, body="", headers=v3, now_ms=_at(TS)) == 3
    )
    v2 = httpx.Headers({"X-HubSpot-Signature": V2_SIG, "X-HubSpot-Signature-Version": "v2"})
    assert verify_request(SECRET, method="GET", uri=POST_URI, body="", headers=v2) == 2
    v1 = httpx.Headers({"X-HubSpot-Signature": V1_SIG, "X-HubSpot-Signature-Version": "v1"})
    assert verify_request(SECRET, method="POST", uri=POST_URI, body=V1_BODY, headers=v1) == 1


def test_verify_request_missing_headers() -> None:
    with pytest.raises(SignatureError) as info:
        verify_request(SECRET, method="GET", uri=GET_URI, body="", headers=httpx.Headers())
    assert info.value.reason == "missing"
    no_ts = httpx.Headers({"X-HubSpot-Signature-v3": GET_SIG})
    assert not is_valid_request(SECRET, method="GET", uri=GET_URI, body="", headers=no_ts)


def test_signed_headers_round_trip_and_expiry() -> None:
    headers = httpx.Headers(
        signed_headers_v3(SECRET, method="GET", uri=GET_URI, body="", timestamp_ms=TS)
    )
    assert headers["X-HubSpot-Signature-v3"] == GET_SIG
    assert is_valid_request(
        SECRET, method="GET", uri=GET_URI, body="", headers=headers, now_ms=_at(TS + 1000)
    )
    assert not is_valid_request(
        SECRET, method="GET", uri=GET_URI, body="", headers=headers, now_ms=_at(TS + 300_001)
    )
