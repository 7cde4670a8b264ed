"""HubSpot's official Python SDK (hubspot-api-client) as the outside judge of the sandbox's OAuth:
its install URL, its token client (authorization_code and refresh_token grants), its v1 token
metadata clients, and its Marketing Events client on an OAuth access token, against a sandbox
served by uvicorn on a real port. The SDK deserialises answers into its generated models, which
reject missing required fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hubspot import HubSpot
from hubspot.marketing.events import MarketingEventCreateRequestParams
from hubspot.marketing.events.exceptions import UnauthorizedException
from hubspot.oauth import AccessTokenInfoResponse, RefreshTokenInfoResponse, TokenResponseIF
from hubspot.oauth.exceptions import ApiException, NotFoundException
from hubspot.utils.oauth import AUTHORIZE_URL, get_auth_url

from connector.sandbox import AccountConfig, SandboxConfig, create_app
from connector.sandbox.config import FIRST_EXTRA_HUB_ID, OAuthAppConfig
from connector.sandbox.server import RunningSandbox, serve_in_thread

HUB = FIRST_EXTRA_HUB_ID + 2
REDIRECT = "http://localhost:3000/oauth-callback"
APP = OAuthAppConfig(
    app_id=7007,
    client_id="0b7c1d5e-1111-4c3a-9e7f-000000007007",
    client_secret="4e2a9c7b-2222-4e6d-8a0b-000000007007",
    redirect_uris=(REDIRECT,),
    optional_scopes=frozenset({"automation"}),
    name="SDK App",
)


@pytest.fixture(scope="module")
def served() -> Iterator[RunningSandbox]:
    cfg = SandboxConfig.multi_account(3, oauth_apps=(APP,), access_token_ttl_seconds=900)
    with serve_in_thread(create_app(cfg)) as running:
        yield running


def code_from_install_page(url: str, *, state: str = "opaque-state") -> str:
    """Follow the SDK's install URL on the sandbox (hub chosen with the sandbox's `hub_id`)."""
    sdk_url = get_auth_url(
        APP.client_id, REDIRECT, scope=tuple(sorted(APP.scopes)), optional_scope=("automation",),
        state=state,
    )
    assert sdk_url.startswith(AUTHORIZE_URL)
    page = httpx.get(sdk_url.replace("https://app.hubspot.com", url) + f"&hub_id={HUB}")
    assert page.status_code == 302, page.text
    query = parse_qs(urlsplit(page.headers["location"]).query)
    assert query["state"] == [state]
    return query["code"][0]


def test_the_sdk_exchanges_a_code_refreshes_and_reads_token_metadata(
    served: RunningSandbox,
) -> None:
    oauth = HubSpot(host=served.url).oauth
    tokens = oauth.tokens_api.create(
        grant_type="authorization_code",
        code=code_from_install_page(served.url),
        redirect_uri=REDIRECT,
        client_id=APP.client_id,
        client_secret=APP.client_secret,
    )
    assert isinstance(tokens, TokenResponseIF)
    assert tokens.token_type == "bearer" and tokens.expires_in == 900
    assert tokens.refresh_token.startswith("na1-")

    renewed = oauth.tokens_api.create(
        grant_type="refresh_token",
        refresh_token=tokens.refresh_token,
        client_id=APP.client_id,
        client_secret=APP.client_secret,
    )
    assert renewed.refresh_token == tokens.refresh_token
    assert renewed.access_token != tokens.access_token

    info = oauth.access_tokens_api.get(renewed.access_token)
    assert isinstance(info, AccessTokenInfoResponse)
    assert (info.hub_id, info.app_id, info.token_type) == (HUB, 7007, "access")
    assert info.scopes == ["oauth", "automation", *sorted(APP.scopes)]
    assert info.hub_domain == f"sandbox-{HUB}.example.com" and 0 < info.expires_in <= 900

    refresh_info = oauth.refresh_tokens_api.get(tokens.refresh_token)
    assert isinstance(refresh_info, RefreshTokenInfoResponse)
    assert (refresh_info.hub_id, refresh_info.client_id) == (HUB, APP.client_id)
    assert refresh_info.token_type == "refresh" and refresh_info.user_id > 0

    oauth.refresh_tokens_api.archive(tokens.refresh_token)
    with pytest.raises(ApiException) as refused:
        oauth.tokens_api.create(
            grant_type="refresh_token",
            refresh_token=tokens.refresh_token,
            client_id=APP.client_id,
            client_secret=APP.client_secret,
        )
    assert refused.value.status == 400
    body = json.loads(refused.value.body)
    assert (body["error"], body["status"]) == ("invalid_grant", "BAD_REFRESH_TOKEN")
    with pytest.raises(NotFoundException):
        oauth.refresh_tokens_api.get(tokens.refresh_token)


def test_the_sdk_sees_code_reuse_and_a_bad_secret_as_400s(served: RunningSandbox) -> None:
    oauth = HubSpot(host=served.url).oauth
    code = code_from_install_page(served.url)
    form = {"redirect_uri": REDIRECT, "client_id": APP.client_id}
    with pytest.raises(ApiException) as bad_secret:
        oauth.tokens_api.create(
            grant_type="authorization_code", code=code, client_secret="wrong", **form
        )
    assert bad_secret.value.status == 400
    assert json.loads(bad_secret.value.body)["error"] == "invalid_client"
    oauth.tokens_api.create(
        grant_type="authorization_code", code=code, client_secret=APP.client_secret, **form
    )
    with pytest.raises(ApiException) as reused:
        oauth.tokens_api.create(
            grant_type="authorization_code", code=code, client_secret=APP.client_secret, **form
        )
    assert json.loads(reused.value.body)["status"] == "BAD_AUTH_CODE"


def test_the_sdk_works_on_an_oauth_token_in_its_account_until_the_app_is_uninstalled(
    served: RunningSandbox,
) -> None:
    tokens = HubSpot(host=served.url).oauth.tokens_api.create(
        grant_type="authorization_code",
        code=code_from_install_page(served.url),
        redirect_uri=REDIRECT,
        client_id=APP.client_id,
        client_secret=APP.client_secret,
    )
    events = HubSpot(access_token=tokens.access_token, host=served.url).marketing.events
    created = events.basic_api.create(
        MarketingEventCreateRequestParams(
            external_account_id="tenant-1",
            external_event_id="sdk-oauth-1",
            event_name="OAuth webinar",
            event_organizer="Ops",
            custom_properties=[],
        )
    )
    stored = httpx.get(f"{served.url}/_sandbox/events", params={"hub_id": HUB}).json()
    assert [e["object_id"] for e in stored] == [created.object_id]
    assert httpx.get(f"{served.url}/_sandbox/events").json() == []  # not in the default account

    httpx.post(f"{served.url}/_sandbox/installs/{HUB}/uninstall").raise_for_status()
    with pytest.raises(UnauthorizedException) as denied:
        events.basic_api.get_details("sdk-oauth-1", "tenant-1")
    assert json.loads(denied.value.body)["category"] == "INVALID_AUTHENTICATION"


def test_an_optional_scope_the_account_lacks_is_dropped_for_the_sdk_too() -> None:
    cfg = SandboxConfig.default(
        oauth_apps=(APP,), accounts=(AccountConfig(HUB, unavailable_scopes={"automation"}),)
    )
    with serve_in_thread(create_app(cfg)) as running:
        oauth = HubSpot(host=running.url).oauth
        tokens = oauth.tokens_api.create(
            grant_type="authorization_code",
            code=code_from_install_page(running.url),
            redirect_uri=REDIRECT,
            client_id=APP.client_id,
            client_secret=APP.client_secret,
        )
        info = oauth.access_tokens_api.get(tokens.access_token)
    assert "automation" not in info.scopes and info.hub_id == HUB
