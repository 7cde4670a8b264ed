"""eventDetailsUrl callback: URL shape, v3 signature (reference §7 algorithm and vectors), and
event creation from the app's answer."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.callback import callback_url
from connector.sandbox.signature import is_valid_v3, sign_v2, sign_v3

P = "/marketing/v3/marketing-events"
NOW = 1_700_000_000.0
VECTOR_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"


def test_v3_signature_matches_the_reference_vectors() -> None:
    get = "https://my.event.app/events/1234-event-XYZ?appId=101&externalAccountId=ABC-account-789"
    assert sign_v3(VECTOR_SECRET, "GET", get, "", "1700000000000") == (
        "BogJm3X5yX+dkf7jaY7/7zb7H70LfhbrZoRzRhFz4bc="
    )
    post = "https://www.example.com/webhook_uri"
    assert (
        sign_v3(VECTOR_SECRET, "POST", post, '{"example_field":"example_value"}', "1700000000000")
        == "rQEKkaNUiu+1qGF//O/pw4BCzstSqO1PyUnGICmf+7o="
    )
    encoded = "https://my.event.app/events/a%3Ab?appId=101"
    assert sign_v3("s", "GET", encoded, "", "1") == sign_v3(
        "s", "GET", "https://my.event.app/events/a:b?appId=101", "", "1"
    )


def test_v2_signature_matches_the_docs_vector() -> None:
    assert sign_v2(
        "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", "GET", "https://www.example.com/webhook_uri", ""
    ) == ("eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e")


def test_stale_timestamps_are_rejected() -> None:
    sig = sign_v3("s", "GET", "https://x/y", "", "1000")
    assert is_valid_v3("s", "GET", "https://x/y", "", "1000", sig, now_ms=1000 + 300_000)
    assert not is_valid_v3("s", "GET", "https://x/y", "", "1000", sig, now_ms=1000 + 300_001)
    assert not is_valid_v3("t", "GET", "https://x/y", "", "1000", sig, now_ms=1000)


def test_callback_url_shape() -> None:
    assert callback_url(
        "https://my.event.app/events/%s", "1234-event-XYZ", 101, "ABC-account-789"
    ) == ("https://my.event.app/events/1234-event-XYZ?appId=101&externalAccountId=ABC-account-789")


class EventApp:
    """The integrator's side: verifies the signature and answers event details."""

    def __init__(self, secret: str, status: int = 200) -> None:
        self.secret = secret
        self.status = status
        self.seen: list[tuple[str, bool]] = []
        self.app = Starlette(routes=[Route("/events/{eid}", self.details)])

    async def details(self, request: Request) -> Response:
        valid = is_valid_v3(
            self.secret,
            request.method,
            str(request.url),
            "",
            request.headers["X-HubSpot-Request-Timestamp"],
            request.headers["X-HubSpot-Signature-v3"],
            now_ms=int(NOW * 1000),
        )
        self.seen.append((str(request.url), valid))
        if not valid:
            return Response(status_code=401)
        if self.status != 200:
            return Response(status_code=self.status)
        return JSONResponse(
            {
                "eventName": f"Fetched {request.path_params['eid']}",
                "eventOrganizer": "Webinar Co",
                "eventType": "WEBINAR",
                "startDateTime": "2024-05-22T13:00:00Z",
            }
        )


def _sandbox(event_app: EventApp) -> tuple[TestClient, dict[str, str]]:
    cfg = SandboxConfig.default(window_limit=None, daily_limit=None, clock=lambda: NOW)
    app = create_app(cfg, callback_transport=httpx.ASGITransport(app=event_app.app))
    client = TestClient(app)
    auth = {"Authorization": f"Bearer {cfg.apps[0].token}"}
    client.post(
        f"{P}/{cfg.apps[0].app_id}/settings",
        headers=auth,
        json={"eventDetailsUrl": "https://my.event.app/events/%s"},
    ).raise_for_status()
    return client, auth


def test_attendance_for_an_unknown_event_fetches_and_creates_it() -> None:
    cfg = SandboxConfig.default()
    event_app = EventApp(cfg.apps[0].client_secret)
    client, auth = _sandbox(event_app)
    answer = client.post(
        f"{P}/attendance/web-1/register/email-create?externalAccountId=acc",
        headers=auth,
        json={"inputs": [{"email": "a@example.com", "interactionDateTime": 1}]},
    )
    assert answer.status_code == 200 and len(answer.json()["results"]) == 1
    assert event_app.seen == [
        ("https://my.event.app/events/web-1?appId=1001&externalAccountId=acc", True)
    ]
    event = client.get(f"{P}/events/web-1?externalAccountId=acc", headers=auth).json()
    assert event["eventName"] == "Fetched web-1" and event["eventType"] == "WEBINAR"
    assert event["registrants"] == 1
    # now it exists: no second callback
    client.post(
        f"{P}/attendance/web-1/attend/email-create?externalAccountId=acc",
        headers=auth,
        json={"inputs": [{"email": "a@example.com", "interactionDateTime": 2}]},
    )
    assert len(event_app.seen) == 1
    assert client.get("/_sandbox/callbacks").json()[0]["status"] == 200


def test_failed_callback_means_404_and_no_event() -> None:
    event_app = EventApp("wrong-secret")  # the app rejects our signature
    client, auth = _sandbox(event_app)
    answer = client.post(
        f"{P}/attendance/web-2/register/email-create?externalAccountId=acc",
        headers=auth,
        json={"inputs": [{"email": "a@example.com", "interactionDateTime": 1}]},
    )
    assert answer.status_code == 404
    assert event_app.seen[0][1] is False
    assert client.get("/_sandbox/events").json() == []


def test_no_callback_without_settings() -> None:
    cfg = SandboxConfig.default(window_limit=None, daily_limit=None)
    client = TestClient(create_app(cfg))
    auth = {"Authorization": f"Bearer {cfg.apps[0].token}"}
    answer = client.post(
        f"{P}/attendance/zzz/register/create?externalAccountId=acc",
        headers=auth,
        json={"inputs": []},
    )
    assert answer.status_code == 404 and client.get("/_sandbox/callbacks").json() == []
