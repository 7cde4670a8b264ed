"""The install flow end to end: `connector serve` (build_serve + run_serve, app mode) on a port,
the HubSpot sandbox's authorize page and token endpoint on another, the install registry on the
real broker. A browser's redirects are followed with httpx: the install link the platform signed
-> HubSpot's authorize page -> serve's OAuth callback; then the registry topic is read back as
every instance reads it. A link the platform did not sign goes nowhere."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connector.config import Settings
from connector.demo.installs import authorize, local_socket, redirect_url, serving
from connector.hubspot.oauth import READ_SCOPE, WRITE_SCOPE
from connector.installs.links import LinkSigner
from connector.installs.registry import open_registry
from connector.sandbox.app import create_app
from connector.sandbox.config import OAuthAppConfig, SandboxConfig
from connector.sandbox.server import serve_in_thread
from connector.serve import INSTALL_PATH
from tests.pipeline_helpers import app_mode_env, read_topic, settings_for

pytestmark = pytest.mark.integration

APP_ID = 4004
CLIENT_ID = "it-client-id-4004"
CLIENT_SECRET = "it-client-secret-4004"
LINK_SECRET = "it-platform-link-secret-0123456789"
GUARD = 30.0  # longest wait for the broker or a server: a guard, never a timing
HUB_A, HUB_B, HUB_DECLINED = 70000001, 70000002, 70000003


@dataclass
class Stack:
    """serve and the sandbox, running; what the tests need of them."""

    settings: Settings
    serve_url: str
    sandbox_url: str
    http: httpx.Client
    bootstrap: str

    def authorize(self, account: str, hub_id: int, *, decline: bool = False) -> str:
        """Open the install link and approve (or decline) on the sandbox's authorize page as
        account ``hub_id``: the callback URL HubSpot sends the browser to."""
        link = LinkSigner(LINK_SECRET).sign(account, ttl_seconds=600)  # as the platform does
        return authorize(self.http, self.serve_url, link.url(self.serve_url), hub_id,
                         decline=decline)

    def installs_topic(self) -> list[Any]:
        return read_topic(self.bootstrap, self.settings.topics.installs, GUARD)


@pytest.fixture
def stack(kafka_bootstrap: str) -> Iterator[Stack]:
    sock, serve_url = local_socket()
    redirect = redirect_url(serve_url)  # HubSpot: no IP hosts
    oauth_app = OAuthAppConfig(app_id=APP_ID, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                               redirect_uris=(redirect,),
                               scopes=frozenset({READ_SCOPE, WRITE_SCOPE}))
    sandbox_app = create_app(SandboxConfig.multi_account(3, oauth_apps=(oauth_app,)))
    with serve_in_thread(sandbox_app) as sandbox:
        settings = settings_for(app_mode_env(
            kafka_bootstrap, sandbox.url, redirect, client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET, app_id=APP_ID, link_secret=LINK_SECRET))
        with serving(settings, sock), httpx.Client(follow_redirects=False, timeout=GUARD) as http:
            yield Stack(settings, serve_url, sandbox.url, http, kafka_bootstrap)


def sandbox_installs(stack: Stack, hub_id: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = stack.http.get(f"{stack.sandbox_url}/_sandbox/installs",
                                                params={"hub_id": hub_id}).json()
    return rows


def test_installs_through_the_real_flow_land_in_the_registry(stack: Stack) -> None:
    callback_a = stack.authorize("acct-a", HUB_A)
    page_a = stack.http.get(callback_a)
    assert page_a.status_code == 200, page_a.text
    assert "HubSpot connected" in page_a.text
    assert "acct-a" in page_a.text and str(HUB_A) in page_a.text
    page_b = stack.http.get(stack.authorize("acct-b", HUB_B))
    assert page_b.status_code == 200, page_b.text

    # the registry, read whole from Kafka as another instance reads it
    with open_registry(stack.settings, timeout=GUARD) as registry:
        a, b = registry.table.get("acct-a"), registry.table.get("acct-b")
    assert a is not None and b is not None
    assert (a.kind, a.status, a.hub_id, b.hub_id) == ("oauth", "active", HUB_A, HUB_B)
    assert set(a.scopes) == {"oauth", READ_SCOPE, WRITE_SCOPE}
    assert a.missing_scopes((WRITE_SCOPE,)) == ()
    assert a.refresh_token and a.access_token and a.access_expires_at is not None

    # the tokens decrypted from the registry are the ones the sandbox issued for that account
    refresh = stack.http.get(f"{stack.sandbox_url}/oauth/v1/refresh-tokens/{a.refresh_token}")
    assert refresh.status_code == 200
    assert (refresh.json()["hub_id"], refresh.json()["client_id"]) == (HUB_A, CLIENT_ID)
    access = stack.http.get(f"{stack.sandbox_url}/oauth/v1/access-tokens/{a.access_token}")
    assert access.status_code == 200
    assert (access.json()["hub_id"], access.json()["app_id"]) == (HUB_A, APP_ID)
    [installed] = sandbox_installs(stack, HUB_A)
    assert (installed["appId"], installed["status"]) == (APP_ID, "installed")

    # one record per account, tokens encrypted on the topic; pages never show a token
    records = stack.installs_topic()
    assert sorted(m.key() for m in records) == [b"acct-a", b"acct-b"]
    for message in records:
        assert a.access_token.encode() not in message.value()
        assert a.refresh_token.encode() not in message.value()
    assert a.access_token not in page_a.text and a.refresh_token not in page_a.text


def test_a_declined_install_writes_nothing(stack: Stack) -> None:
    callback = stack.authorize("acct-d", HUB_DECLINED, decline=True)
    assert parse_qs(urlsplit(callback).query)["error"] == ["access_denied"]
    page = stack.http.get(callback)
    assert page.status_code == 200
    assert "Install cancelled" in page.text
    assert sandbox_installs(stack, HUB_DECLINED) == []
    # the topic is created by the first install only: a successful one proves the ordering
    assert stack.http.get(stack.authorize("acct-a", HUB_A)).status_code == 200
    assert [m.key() for m in stack.installs_topic()] == [b"acct-a"]


def test_a_replayed_callback_is_refused_and_writes_nothing_new(stack: Stack) -> None:
    callback = stack.authorize("acct-a", HUB_A)
    assert stack.http.get(callback).status_code == 200
    before = [(m.key(), m.value()) for m in stack.installs_topic()]
    assert len(before) == 1

    replay = stack.http.get(callback)  # the same code and state again
    assert replay.status_code == 400
    assert "already used or has expired" in replay.text
    assert [(m.key(), m.value()) for m in stack.installs_topic()] == before

    forged = callback.replace("state=", "state=x")
    assert stack.http.get(forged).status_code == 400
    assert [(m.key(), m.value()) for m in stack.installs_topic()] == before


def test_a_link_the_platform_did_not_sign_installs_nothing(stack: Stack) -> None:
    unsigned = stack.http.get(f"{stack.serve_url}{INSTALL_PATH}", params={"account": "acct-x"})
    forged = LinkSigner("someone-elses-secret-0123456789").sign("acct-x")
    for response in (unsigned, stack.http.get(forged.url(stack.serve_url))):
        assert response.status_code == 403, response.text
        assert "invalid or expired" in response.text
        assert "location" not in response.headers
    for hub_id in (HUB_A, HUB_B, HUB_DECLINED):
        assert sandbox_installs(stack, hub_id) == []
    # the topic exists only once an install is written: a real one afterwards is the only record
    assert stack.http.get(stack.authorize("acct-a", HUB_A)).status_code == 200
    assert [m.key() for m in stack.installs_topic()] == [b"acct-a"]
