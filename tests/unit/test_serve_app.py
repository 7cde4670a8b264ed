"""connector serve's ASGI app through Starlette's TestClient: the signed event-details callback
(HubSpot's signer is the sandbox's, an independent implementation), health, readiness, metrics."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import pytest
from starlette.testclient import TestClient

from connector.sandbox.signature import sign_v3
from connector.serve import create_serve_app, event_details
from connector.serve.details import iso_ms
from connector.telemetry import Telemetry

SECRET = "sandbox-client-secret-1001"
APP_ID = 1001
NOW_MS = 1_767_261_600_000  # 2026-01-01T10:00:00Z
BASE = "http://testserver"
WEBINAR: dict[str, Any] = {
    "webinarId": "web-1", "accountId": "acct-1", "title": "Kafka to HubSpot",
    "organizer": "Webinar Team", "eventType": "WEBINAR", "description": "A webinar.",
    "url": "https://webinars.example.com/web-1", "scheduledStart": NOW_MS,
    "scheduledEnd": NOW_MS + 3_600_000, "actualStart": None, "actualEnd": None,
    "customProperties": {"track": "integration"}, "status": "SCHEDULED", "updatedAt": 5,
}
EXPECTED = {
    "eventName": "Kafka to HubSpot",
    "eventOrganizer": "Webinar Team",
    "eventType": "WEBINAR",
    "startDateTime": "2026-01-01T10:00:00.000Z",
    "endDateTime": "2026-01-01T11:00:00.000Z",
    "eventDescription": "A webinar.",
    "eventUrl": "https://webinars.example.com/web-1",
    "eventCancelled": False,
}


class Clock:
    def __init__(self, ms: int = NOW_MS) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000


def make_client(webinars: list[dict[str, Any]] | None = None, **kwargs: Any) -> TestClient:
    table = {w["webinarId"]: w for w in (webinars if webinars is not None else [WEBINAR])}
    options: dict[str, Any] = {"client_secret": SECRET, "app_id": APP_ID, "clock": Clock()}
    options.update(kwargs)
    return TestClient(create_serve_app(table.get, **options), base_url=BASE)


def target(event_id: str = "web-1", **params: Any) -> str:
    query = {"appId": str(APP_ID), "externalAccountId": "acct-1", **params}
    query = {k: v for k, v in query.items() if v is not None}
    path = f"/events/{quote(event_id, safe='')}"
    return f"{path}?{urlencode(query)}" if query else path


def signed(path: str, *, secret: str = SECRET, timestamp: int = NOW_MS,
           base: str = BASE) -> dict[str, str]:
    """The headers HubSpot (here: the sandbox's signer) sends for GET base+path."""
    return {"X-HubSpot-Signature-v3": sign_v3(secret, "GET", base + path, "", str(timestamp)),
            "X-HubSpot-Request-Timestamp": str(timestamp)}


def get(client: TestClient, path: str, **sign: Any) -> Any:
    return client.get(path, headers=signed(path, **sign))


# --------------------------------------------------------------------------- 200


def test_reference_test_vector_is_accepted() -> None:
    """Reference §7: secret yyyy…, timestamp 1700000000000, the documented URL and signature."""
    webinar = {**WEBINAR, "webinarId": "1234-event-XYZ", "accountId": "ABC-account-789"}
    client = make_client([webinar], client_secret="yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
                         app_id=101, clock=Clock(1_700_000_000_000),
                         public_url="https://my.event.app")
    response = client.get(
        "/events/1234-event-XYZ?appId=101&externalAccountId=ABC-account-789",
        headers={"X-HubSpot-Signature-v3": "BogJm3X5yX+dkf7jaY7/7zb7H70LfhbrZoRzRhFz4bc=",
                 "X-HubSpot-Request-Timestamp": "1700000000000"})
    assert response.status_code == 200, response.text
    assert response.json() == EXPECTED


def test_valid_signature_answers_exactly_the_callback_fields() -> None:
    response = get(make_client(), target())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == EXPECTED  # no customProperties, no nulls, no external ids


def test_unset_optional_fields_are_left_out_and_cancelled_is_reported() -> None:
    webinar = {**WEBINAR, "description": None, "url": None, "eventType": None,
               "scheduledEnd": None, "status": "CANCELLED"}
    response = get(make_client([webinar]), target())
    assert response.status_code == 200
    assert response.json() == {"eventName": "Kafka to HubSpot", "eventOrganizer": "Webinar Team",
                               "eventType": "WEBINAR", "startDateTime": "2026-01-01T10:00:00.000Z",
                               "eventCancelled": True}


def test_ids_with_escaped_characters_are_verified_over_the_url_as_sent() -> None:
    webinar = {**WEBINAR, "webinarId": "web 1/ü:x"}
    path = target("web 1/ü:x")
    assert "%20" in path and "%2F" in path
    response = get(make_client([webinar]), path)
    assert response.status_code == 200, response.text


def test_public_url_replaces_scheme_host_and_prefix_behind_a_proxy() -> None:
    client = make_client(public_url="https://connector.example.com/hubspot/")
    path = target()
    ok = client.get(path, headers=signed(path, base="https://connector.example.com/hubspot"))
    assert ok.status_code == 200, ok.text
    as_seen = get(client, path)  # signed over http://testserver...: not what HubSpot called
    assert as_seen.status_code == 401


def test_a_timestamp_exactly_five_minutes_old_is_still_fresh() -> None:
    response = get(make_client(), target(), timestamp=NOW_MS - 300_000)
    assert response.status_code == 200


# --------------------------------------------------------------------------- 401


@pytest.mark.parametrize("headers", [
    {},
    {"X-HubSpot-Request-Timestamp": str(NOW_MS)},
    {"X-HubSpot-Signature-v3": "abc="},
])
def test_missing_signature_or_timestamp_is_401(headers: dict[str, str]) -> None:
    response = make_client().get(target(), headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == "error" and body["category"] == "INVALID_SIGNATURE"
    assert body["message"].startswith("missing")


def test_v2_signature_alone_is_not_enough() -> None:
    from connector.sandbox.signature import sign_v2

    path = target()
    response = make_client().get(path, headers={
        "X-HubSpot-Signature": sign_v2(SECRET, "GET", BASE + path, ""),
        "X-HubSpot-Signature-Version": "v2"})
    assert response.status_code == 401


def test_tampered_signature_is_401_with_a_json_error() -> None:
    path = target()
    headers = signed(path)
    sig = headers["X-HubSpot-Signature-v3"]
    headers["X-HubSpot-Signature-v3"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    response = make_client().get(path, headers=headers)
    assert response.status_code == 401
    assert response.json()["message"].startswith("mismatch")
    assert response.headers["www-authenticate"] == "HubSpot-Signature-v3"


def test_signature_of_another_query_or_secret_is_401() -> None:
    client = make_client()
    other_account = client.get(target(), headers=signed(target(externalAccountId="acct-2")))
    assert other_account.status_code == 401
    wrong_secret = get(client, target(), secret="another-secret")
    assert wrong_secret.status_code == 401


@pytest.mark.parametrize("offset_ms", [-300_001, -3_600_000, 300_001])
def test_stale_or_future_timestamp_is_401(offset_ms: int) -> None:
    response = get(make_client(), target(), timestamp=NOW_MS + offset_ms)
    assert response.status_code == 401
    assert response.json()["message"].startswith("expired")


def test_malformed_timestamp_is_401() -> None:
    path = target()
    headers = signed(path)
    headers["X-HubSpot-Request-Timestamp"] = "yesterday"
    response = make_client().get(path, headers=headers)
    assert response.status_code == 401
    assert response.json()["message"].startswith("malformed")


def test_signature_is_checked_before_anything_is_revealed() -> None:
    response = make_client().get(target("unknown"))
    assert response.status_code == 401  # not 404: unsigned callers learn nothing


# --------------------------------------------------------------------------- 400 / 403 / 404


@pytest.mark.parametrize(("params", "missing"), [
    ({"appId": None}, "appId"),
    ({"externalAccountId": None}, "externalAccountId"),
    ({"appId": None, "externalAccountId": None}, "appId, externalAccountId"),
    ({"externalAccountId": ""}, "externalAccountId"),
])
def test_missing_query_parameters_are_400(params: dict[str, Any], missing: str) -> None:
    response = get(make_client(), target(**params))
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert missing in response.json()["message"]


def test_non_integer_app_id_is_400() -> None:
    response = get(make_client(), target(appId="abc"))
    assert response.status_code == 400
    assert "appId" in response.json()["message"]


def test_another_apps_request_is_403() -> None:
    response = get(make_client(), target(appId="2002"))
    assert response.status_code == 403


def test_unknown_event_is_404() -> None:
    response = get(make_client(), target("web-404"))
    assert response.status_code == 404
    assert response.json() == {"status": "error", "category": "OBJECT_NOT_FOUND",
                               "message": "no webinar web-404 in account acct-1"}


def test_webinar_of_another_account_is_404() -> None:
    response = get(make_client(), target(externalAccountId="acct-2"))
    assert response.status_code == 404


def test_only_get_is_served() -> None:
    assert make_client().post(target()).status_code == 405


# --------------------------------------------------------------------------- health, metrics


def test_healthz_answers_while_the_process_runs() -> None:
    response = make_client(ready=lambda: False).get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_reports_each_check() -> None:
    checks = {"webinar_table": True, "kafka": True}
    client = make_client(ready=lambda: checks)
    ok = client.get("/readyz")
    assert ok.status_code == 200
    assert ok.json() == {"status": "ready", "checks": checks}
    checks["kafka"] = False
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.json() == {"status": "not-ready",
                           "checks": {"webinar_table": True, "kafka": False}}


def test_readyz_accepts_a_boolean_check() -> None:
    assert make_client(ready=lambda: False).get("/readyz").status_code == 503
    assert make_client(ready=lambda: True).get("/readyz").status_code == 200


def test_metrics_are_served_for_prometheus() -> None:
    with Telemetry.for_tests(prometheus=True) as telemetry:
        telemetry.metrics.records_in("webinar.webinars", 3)
        response = make_client(telemetry=telemetry).get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    line = next(row for row in response.text.splitlines()
                if row.startswith("connector_records_in_total{"))
    assert 'topic="webinar.webinars"' in line and line.endswith(" 3.0")


def test_no_metrics_route_without_prometheus() -> None:
    assert make_client().get("/metrics").status_code == 404
    assert make_client(telemetry=Telemetry.disabled()).get("/metrics").status_code == 404


# --------------------------------------------------------------------------- details


def test_event_details_follow_the_sinks_mapping() -> None:
    assert event_details(WEBINAR) == EXPECTED
    assert list(event_details(WEBINAR)) == list(EXPECTED)


def test_iso_ms_is_hubspots_instant_format() -> None:
    assert iso_ms(1_722_835_120_635) == "2024-08-05T05:18:40.635Z"
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"


def test_an_empty_client_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="client_secret"):
        create_serve_app(lambda _id: None, client_secret="", app_id=APP_ID)
