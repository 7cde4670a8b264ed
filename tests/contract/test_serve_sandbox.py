"""connector serve <-> the sandbox as HubSpot: the sandbox calls our eventDetailsUrl, signed, for
attendance on an event it does not know, and creates the event from our answer.

Both sides run under uvicorn on loopback and share one injected clock (signature freshness is
then deterministic). Settings are registered with `connector hubspot register-settings`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from connector.cli.hubspot import hubspot_group
from connector.runtime.table import WebinarTable
from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.server import serve_in_thread as serve_sandbox
from connector.serve import create_serve_app, serve_in_thread

NOW_MS = 1_767_261_600_000
DEFAULT_APP = SandboxConfig.default().apps[0]
TOKEN = DEFAULT_APP.token
PREFIX = "/marketing/v3/marketing-events"
WEBINAR: dict[str, Any] = {
    "webinarId": "web-cb-1", "accountId": "acct-1", "title": "Callbacks, explained",
    "organizer": "Webinar Team", "eventType": "WEBINAR", "description": "Signed callbacks.",
    "url": "https://webinars.example.com/web-cb-1", "scheduledStart": NOW_MS,
    "scheduledEnd": NOW_MS + 3_600_000, "actualStart": None, "actualEnd": None,
    "customProperties": {}, "status": "SCHEDULED", "updatedAt": 1,
}


def clock() -> float:
    return NOW_MS / 1000


class ProxyTransport(httpx.AsyncBaseTransport):
    """A TLS-terminating reverse proxy: https://connector.test/... -> http://127.0.0.1:port/...,
    the Host header kept (as proxies do)."""

    def __init__(self, target: str) -> None:
        self._target = httpx.URL(target)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url.copy_with(scheme=self._target.scheme, host=self._target.host,
                                    port=self._target.port)
        forwarded = httpx.Request(request.method, url, headers=request.headers,
                                  content=request.content)
        async with httpx.AsyncHTTPTransport() as inner:  # one connection per call, closed
            response = await inner.handle_async_request(forwarded)
            content = await response.aread()
        return httpx.Response(response.status_code, headers=response.headers, content=content)


@contextlib.contextmanager
def served_connector(secret: str = DEFAULT_APP.client_secret, **kwargs: Any) -> Iterator[str]:
    table = WebinarTable()
    table.put(WEBINAR)
    app = create_serve_app(table.get, client_secret=secret, app_id=DEFAULT_APP.app_id,
                           clock=clock, **kwargs)
    with serve_in_thread(app) as running:
        yield running.url


@contextlib.contextmanager
def sandbox(**overrides: Any) -> Iterator[str]:
    config = SandboxConfig.default(window_limit=None, daily_limit=None, clock=clock,
                                   allow_insecure_callbacks=True, **overrides)
    with serve_sandbox(create_app(config)) as running:
        yield running.url


def cli(*args: str, url: str, token: str = TOKEN) -> Any:
    env = {"CONNECTOR_HUBSPOT__BASE_URL": url, "CONNECTOR_HUBSPOT__ACCESS_TOKEN": token,
           "CONNECTOR_HUBSPOT__APP_ID": str(DEFAULT_APP.app_id),
           "CONNECTOR_HUBSPOT__REQUEST_TIMEOUT_SECONDS": "5"}
    return CliRunner().invoke(hubspot_group, list(args), env=env)


def register_http(sandbox_url: str, connector_url: str) -> None:
    """http:// eventDetailsUrl (sandbox allow_insecure_callbacks): the client refuses http like
    HubSpot does, so this one goes straight to the settings endpoint."""
    response = httpx.post(f"{sandbox_url}{PREFIX}/{DEFAULT_APP.app_id}/settings",
                          json={"eventDetailsUrl": f"{connector_url}/events/%s"},
                          headers={"Authorization": f"Bearer {TOKEN}"})
    response.raise_for_status()


def register_attendance(sandbox_url: str, webinar_id: str, account: str = "acct-1") -> Any:
    return httpx.post(
        f"{sandbox_url}{PREFIX}/attendance/{webinar_id}/register/email-create",
        params={"externalAccountId": account},
        json={"inputs": [{"email": "jane@example.com", "interactionDateTime": NOW_MS - 1000}]},
        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)


def event_in_sandbox(sandbox_url: str, webinar_id: str, account: str = "acct-1") -> Any:
    return httpx.get(f"{sandbox_url}{PREFIX}/events/{webinar_id}",
                     params={"externalAccountId": account},
                     headers={"Authorization": f"Bearer {TOKEN}"})


def callbacks(sandbox_url: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{sandbox_url}/_sandbox/callbacks").json())


def assert_event_has_the_webinars_fields(event: dict[str, Any]) -> None:
    assert event["externalEventId"] == "web-cb-1"
    assert event["eventName"] == "Callbacks, explained"
    assert event["eventOrganizer"] == "Webinar Team"
    assert event["eventType"] == "WEBINAR"
    assert event["eventDescription"] == "Signed callbacks."
    assert event["eventUrl"] == "https://webinars.example.com/web-cb-1"
    assert event["startDateTime"] == "2026-01-01T10:00:00.000Z"
    assert event["endDateTime"] == "2026-01-01T11:00:00.000Z"
    assert event["eventCancelled"] is False


def test_the_sandbox_creates_an_unknown_event_from_our_signed_answer() -> None:
    with served_connector() as connector_url, sandbox() as sandbox_url:
        register_http(sandbox_url, connector_url)
        assert event_in_sandbox(sandbox_url, "web-cb-1").status_code == 404

        response = register_attendance(sandbox_url, "web-cb-1")

        assert response.status_code == 200, response.text
        assert response.json()["results"][0]["email"] == "jane@example.com"
        [call] = callbacks(sandbox_url)
        assert call["status"] == 200 and call["error"] is None
        assert call["url"] == (f"{connector_url}/events/web-cb-1?appId=1001"
                               "&externalAccountId=acct-1")
        event = event_in_sandbox(sandbox_url, "web-cb-1")
        assert event.status_code == 200
        assert_event_has_the_webinars_fields(event.json())
        again = register_attendance(sandbox_url, "web-cb-1")
        assert again.status_code == 200 and len(callbacks(sandbox_url)) == 1  # known now


def test_register_settings_then_callbacks_through_a_tls_proxy() -> None:
    """`connector hubspot register-settings` with the public https URL; the sandbox reaches serve
    through a TLS-terminating proxy, and serve verifies over its public_url."""
    with served_connector(public_url="https://connector.test") as connector_url, \
            sandbox(callback_transport=ProxyTransport(connector_url)) as sandbox_url:
        result = cli("register-settings", "--url", "https://connector.test/events/%s",
                     url=sandbox_url)
        assert result.exit_code == 0, result.output
        assert "app 1001: eventDetailsUrl = https://connector.test/events/%s" in result.output
        shown = cli("show-settings", url=sandbox_url)
        assert shown.exit_code == 0 and "https://connector.test/events/%s" in shown.output

        response = register_attendance(sandbox_url, "web-cb-1")

        assert response.status_code == 200, response.text
        event = event_in_sandbox(sandbox_url, "web-cb-1")
        assert event.status_code == 200
        assert_event_has_the_webinars_fields(event.json())


@pytest.mark.parametrize(("secret", "webinar_id", "status"), [
    ("not-the-apps-secret", "web-cb-1", 401),  # our side rejects the signature
    (DEFAULT_APP.client_secret, "web-unknown", 404),  # no such webinar
])
def test_no_event_when_serve_refuses(secret: str, webinar_id: str, status: int) -> None:
    with served_connector(secret) as connector_url, sandbox() as sandbox_url:
        register_http(sandbox_url, connector_url)
        response = register_attendance(sandbox_url, webinar_id)
        assert response.status_code == 404
        assert callbacks(sandbox_url)[0]["status"] == status
        assert event_in_sandbox(sandbox_url, webinar_id).status_code == 404


def test_webinar_of_another_account_is_not_created() -> None:
    with served_connector() as connector_url, sandbox() as sandbox_url:
        register_http(sandbox_url, connector_url)
        assert register_attendance(sandbox_url, "web-cb-1", account="acct-2").status_code == 404
        assert callbacks(sandbox_url)[0]["status"] == 404
