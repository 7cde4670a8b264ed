"""An install's access token, end to end against the sandbox on a real port: the code from its
authorize page exchanged by OAuthClient, the install kept by AccessTokens, and a HubSpotClient
with RefreshingBearerAuth writing events. When HubSpot expires the token early (the sandbox's
admin endpoint), the one 401 EXPIRED_AUTHENTICATION refreshes it through the token endpoint and
the request goes through; after an uninstall the refresh is refused and the install revoked."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connector.hubspot import HubSpotClient, MarketingEventCreateRequestParams, RefreshingBearerAuth
from connector.hubspot.oauth import OAuthClient
from connector.installs import AccessTokens, Install, InstallRevoked, InstallTable
from connector.sandbox import AccountConfig, OAuthAppConfig, SandboxConfig, create_app
from connector.sandbox.config import READ_SCOPE, WRITE_SCOPE
from connector.sandbox.server import serve_in_thread
from tests.unit.installs_helpers import MemoryWriter

REDIRECT = "http://localhost:8080/hubspot/oauth/callback"
HUB = 70000001
APP = OAuthAppConfig(app_id=5005, client_id="client-5005", client_secret="secret-5005",
                     redirect_uris=(REDIRECT,), scopes=frozenset({READ_SCOPE, WRITE_SCOPE}),
                     name="Webinar Connector")
ACCOUNT = "tenant-1"


@contextlib.contextmanager
def sandbox(**overrides: Any) -> Iterator[str]:
    config = SandboxConfig.default(oauth_apps=(APP,), accounts=(AccountConfig(HUB),),
                                   **overrides)
    with serve_in_thread(create_app(config)) as running:
        yield running.url


class Statuses(httpx.BaseTransport):
    """The status of every answer, in order."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.seen: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.seen.append(response.status_code)
        return response

    def close(self) -> None:
        self.inner.close()


def installed(url: str) -> tuple[AccessTokens, MemoryWriter, OAuthClient]:
    oauth = OAuthClient(APP.client_id, APP.client_secret, REDIRECT, base_url=url,
                        authorize_url=f"{url}/oauth/authorize")
    page = httpx.get(f"{oauth.authorize_url('state-1')}&hub_id={HUB}", follow_redirects=False)
    assert page.status_code == 302, page.text
    code = parse_qs(urlsplit(page.headers["location"]).query)["code"][0]
    grant = oauth.exchange_code(code)
    assert grant.hub_id == HUB
    table = InstallTable()
    writer = MemoryWriter(table)
    writer.put(Install.from_grant(ACCOUNT, grant, now=grant.obtained_at))
    return AccessTokens(table, oauth, writer), writer, oauth


def hubspot(url: str, tokens: AccessTokens, transport: Statuses) -> HubSpotClient:
    auth = RefreshingBearerAuth(lambda: tokens.bearer(ACCOUNT),
                                lambda token: tokens.invalidate(ACCOUNT, token))
    return HubSpotClient(auth, base_url=url, transport=transport)


def upsert(client: HubSpotClient, event: str) -> str:
    params = MarketingEventCreateRequestParams(
        external_account_id=ACCOUNT, external_event_id=event, event_name="Webinar",
        event_organizer="Org")
    object_id = client.upsert_event(params).value.object_id
    assert object_id
    return object_id


def test_an_expired_token_is_refreshed_once_and_the_request_goes_through() -> None:
    with sandbox() as url:
        tokens, writer, oauth = installed(url)
        first_token = tokens.bearer(ACCOUNT)
        transport = Statuses()
        with hubspot(url, tokens, transport) as client:
            upsert(client, "w-1")
            assert httpx.post(f"{url}/_sandbox/tokens/expire").json()["expired"] >= 1
            upsert(client, "w-2")  # 401 EXPIRED_AUTHENTICATION, refresh, the request again
        assert transport.seen == [200, 401, 200]
        refreshed = tokens.install(ACCOUNT)
        assert refreshed is not None and refreshed.access_token != first_token
        assert writer.written[-1].access_token == refreshed.access_token
        oauth.close()
        for event in ("w-1", "w-2"):
            found = httpx.get(f"{url}/marketing/v3/marketing-events/events/{event}",
                              params={"externalAccountId": ACCOUNT},
                              headers={"Authorization": f"Bearer {refreshed.access_token}"})
            assert found.status_code == 200 and found.json()["externalEventId"] == event


def test_after_an_uninstall_the_refresh_is_refused_and_the_install_revoked() -> None:
    with sandbox(access_tokens_survive_uninstall=True) as url:
        tokens, writer, oauth = installed(url)
        transport = Statuses()
        with hubspot(url, tokens, transport) as client:
            upsert(client, "w-1")
            assert httpx.post(f"{url}/_sandbox/installs/{HUB}/uninstall").status_code < 300
            upsert(client, "w-2")  # the access token lives on until it expires
            httpx.post(f"{url}/_sandbox/tokens/expire")
            with pytest.raises(InstallRevoked):
                upsert(client, "w-3")
        assert transport.seen == [200, 200, 401]
        install = tokens.install(ACCOUNT)
        assert install is not None and install.status == "revoked"
        assert writer.written[-1].status == "revoked"
        oauth.close()
