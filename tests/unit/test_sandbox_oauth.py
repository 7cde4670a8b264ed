"""The sandbox's OAuth: install page, token exchange and refresh on every version, the error
bodies, single-use expiring codes, access-token expiry on an injected clock, token metadata,
introspect, revoke and uninstall. All through HTTP (Starlette's TestClient on the ASGI app)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from connector.sandbox import AccountConfig, OAuthAppConfig, SandboxConfig, create_app
from connector.sandbox.config import CONTACTS_WRITE_SCOPE, READ_SCOPE, WRITE_SCOPE

P = "/marketing/v3/marketing-events"
VERSIONS = ("v1", "v3", "2026-03", "2026-09")
REDIRECT = "https://connector.example.com/oauth/callback"
HUB_A, HUB_B = 70000001, 70000002
APP = OAuthAppConfig(
    app_id=5005,
    client_id="client-5005",
    client_secret="secret-5005",
    redirect_uris=(REDIRECT, "http://localhost:3000/oauth-callback"),
    scopes=frozenset({READ_SCOPE, WRITE_SCOPE}),
    optional_scopes=frozenset({CONTACTS_WRITE_SCOPE}),
    name="Webinar Connector",
)
EVENT = {"externalAccountId": "tenant", "eventName": "Webinar", "eventOrganizer": "Ops"}


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def sandbox(clock: FakeClock | None = None, **overrides: Any) -> TestClient:
    accounts = overrides.pop(
        "accounts",
        (AccountConfig(HUB_A), AccountConfig(HUB_B, unavailable_scopes={CONTACTS_WRITE_SCOPE})),
    )
    cfg = SandboxConfig.default(
        oauth_apps=(APP,), accounts=accounts, clock=clock or FakeClock(), **overrides
    )
    return TestClient(create_app(cfg))


def authorize(client: TestClient, path_hub: int | None = None, **params: str) -> Any:
    query = {
        "client_id": APP.client_id,
        "redirect_uri": REDIRECT,
        "scope": f"{READ_SCOPE} {WRITE_SCOPE}",
        "state": "s-42",
        **params,
    }
    path = "/oauth/authorize" if path_hub is None else f"/oauth/{path_hub}/authorize"
    return client.get(path, params=query, follow_redirects=False)


def redirect_query(response: Any) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def code_for(client: TestClient, path_hub: int | None = None, **params: str) -> str:
    return redirect_query(authorize(client, path_hub, **params))["code"]


def exchange(client: TestClient, code: str, version: str = "v1", **fields: str) -> Any:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": APP.client_id,
        "client_secret": APP.client_secret,
        **fields,
    }
    return client.post(f"/oauth/{version}/token", data=form)


def refresh(client: TestClient, token: str, version: str = "v1", **fields: str) -> Any:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": token,
        "client_id": APP.client_id,
        "client_secret": APP.client_secret,
        **fields,
    }
    return client.post(f"/oauth/{version}/token", data=form)


def install(client: TestClient, hub_id: int = HUB_A) -> dict[str, Any]:
    answer = exchange(client, code_for(client, hub_id))
    assert answer.status_code == 200, answer.text
    return answer.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def upsert(client: TestClient, token: str, external_id: str = "w-1") -> Any:
    return client.put(
        f"{P}/events/{external_id}",
        json={**EVENT, "externalEventId": external_id},
        headers=bearer(token),
    )


# ---- the install page ------------------------------------------------------------------------
def test_authorize_redirects_with_a_code_and_the_state_and_records_the_install() -> None:
    client = sandbox()
    query = redirect_query(authorize(client, HUB_B))
    assert set(query) == {"code", "state"} and query["state"] == "s-42"
    installs = client.get("/_sandbox/installs").json()
    assert installs == [
        {
            "hubId": HUB_B,
            "appId": 5005,
            "scopes": ["oauth", READ_SCOPE, WRITE_SCOPE],
            "user": f"admin@sandbox-{HUB_B}.example.com",
            "userId": 9_000_000 + HUB_B % 1_000_000,
            "status": "installed",
            "installedAt": 1_800_000_000.0,
            "uninstalledAt": None,
            "hasRefreshToken": False,
        }
    ]


def test_the_account_comes_from_the_path_the_hub_id_query_or_is_the_first_one() -> None:
    client = sandbox()
    assert install(client, HUB_B)["hub_id"] == HUB_B
    by_query = exchange(client, code_for(client, hub_id=str(HUB_A)))
    assert by_query.json()["hub_id"] == HUB_A
    default = exchange(client, code_for(client))
    assert default.json()["hub_id"] == 62515  # the first account is the default one


def test_optional_scopes_are_granted_unless_the_account_lacks_them() -> None:
    client = sandbox()
    optional = {"optional_scope": CONTACTS_WRITE_SCOPE}
    granted = exchange(client, code_for(client, HUB_A, **optional)).json()["scopes"]
    dropped = exchange(client, code_for(client, HUB_B, **optional)).json()["scopes"]
    assert granted == ["oauth", CONTACTS_WRITE_SCOPE, READ_SCOPE, WRITE_SCOPE]
    assert dropped == ["oauth", READ_SCOPE, WRITE_SCOPE]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"client_id": "nobody"}, "Unknown client_id nobody"),
        ({"redirect_uri": "https://evil.example.com/cb"}, "does not match"),
        ({"scope": READ_SCOPE}, f"lacks the app's required scopes: {WRITE_SCOPE}"),
        ({"scope": f"{READ_SCOPE} {WRITE_SCOPE} automation"}, "automation"),
        ({"hub_id": "123"}, "no HubSpot account 123"),
    ],
)
def test_a_bad_install_request_is_an_error_page_without_redirect(
    params: dict[str, str], says: str
) -> None:
    client = sandbox()
    page = authorize(client, **params)
    assert page.status_code == 400 and "location" not in page.headers
    assert page.headers["content-type"].startswith("text/html")
    assert says in page.text
    assert client.get("/_sandbox/installs").json() == []


def test_a_required_scope_the_account_lacks_refuses_the_install() -> None:
    client = sandbox()
    page = authorize(client, HUB_B, scope=f"{READ_SCOPE} {WRITE_SCOPE} {CONTACTS_WRITE_SCOPE}")
    assert page.status_code == 400 and f"Account {HUB_B} does not have access" in page.text


def test_a_declining_user_is_redirected_with_access_denied_and_nothing_installs() -> None:
    client = sandbox()
    for flag in ({"decline": "1"}, {"error": "access_denied"}):
        query = redirect_query(authorize(client, HUB_A, **flag))
        assert query["error"] == "access_denied" and query["state"] == "s-42"
        assert query["error_description"] and "code" not in query
    assert client.get("/_sandbox/installs").json() == []


# ---- token endpoint --------------------------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
def test_code_exchange_and_refresh_on_every_version(version: str) -> None:
    client = sandbox()
    answer = exchange(client, code_for(client, HUB_A), version)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    tokens = answer.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 1800
    assert tokens["hub_id"] == HUB_A and tokens["scopes"] == ["oauth", READ_SCOPE, WRITE_SCOPE]
    assert tokens["refresh_token"].startswith("na1-") and len(tokens["access_token"]) >= 300
    assert upsert(client, tokens["access_token"]).status_code == 200

    renewed = refresh(client, tokens["refresh_token"], version)
    assert renewed.status_code == 200, renewed.text
    again = renewed.json()
    assert again["refresh_token"] == tokens["refresh_token"]  # stable refresh token
    assert again["access_token"] != tokens["access_token"] and again["hub_id"] == HUB_A
    assert upsert(client, again["access_token"]).status_code == 200


def test_refresh_works_without_redirect_uri_and_v1_reads_query_parameters() -> None:
    client = sandbox()
    tokens = install(client)
    query = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    answer = client.post(
        "/oauth/v1/token",
        params=query,
        data={"client_id": APP.client_id, "client_secret": APP.client_secret},
    )
    assert answer.status_code == 200 and answer.json()["hub_id"] == HUB_A
    newer = client.post(
        "/oauth/v3/token",
        params=query,
        data={"client_id": APP.client_id, "client_secret": APP.client_secret},
    )
    assert newer.json()["status"] == "BAD_REQUEST"  # v3 and later: form body only


def error_of(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body.pop("correlationId")
    return dict(body)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_bad_refresh_token_is_invalid_grant_bad_refresh_token(version: str) -> None:
    client = sandbox()
    assert error_of(refresh(client, "na1-0000-not-a-token", version)) == {
        "error": "invalid_grant",
        "error_description": "refresh token is invalid, expired or revoked",
        "status": "BAD_REFRESH_TOKEN",
        "message": "missing or invalid refresh token",
    }


def test_codes_are_single_use() -> None:
    client = sandbox()
    code = code_for(client, HUB_A)
    assert exchange(client, code).status_code == 200
    reused = error_of(exchange(client, code, "v3"))
    assert (reused["error"], reused["status"]) == ("invalid_grant", "BAD_AUTH_CODE")
    unknown = error_of(exchange(client, "f00d", "2026-03"))
    assert unknown["status"] == "BAD_AUTH_CODE"


def test_codes_expire_after_their_ttl() -> None:
    clock = FakeClock()
    client = sandbox(clock, auth_code_ttl_seconds=60)
    fresh, stale = code_for(client, HUB_A), code_for(client, HUB_B)
    clock.now += 59.9
    assert exchange(client, fresh).status_code == 200
    clock.now += 0.1
    expired = error_of(exchange(client, stale, "2026-09"))
    assert (expired["error"], expired["status"]) == ("invalid_grant", "EXPIRED_AUTH_CODE")
    assert error_of(exchange(client, stale))["status"] == "BAD_AUTH_CODE"  # and it is gone


def test_the_redirect_uri_must_match_the_authorization_request() -> None:
    client = sandbox()
    code = code_for(client, HUB_A)
    other = error_of(exchange(client, code, redirect_uri="http://localhost:3000/oauth-callback"))
    assert (other["error"], other["status"]) == ("invalid_grant", "BAD_REDIRECT_URI")
    assert exchange(client, code).status_code == 200  # a mismatch does not burn the code


def test_bad_client_credentials_are_invalid_client() -> None:
    client = sandbox()
    code = code_for(client, HUB_A)
    secret = error_of(exchange(client, code, client_secret="guess"))
    assert (secret["error"], secret["status"]) == ("invalid_client", "BAD_CLIENT_SECRET")
    client_id = error_of(exchange(client, code, "v3", client_id="nobody"))
    assert (client_id["error"], client_id["status"]) == ("invalid_client", "BAD_CLIENT_ID")
    assert exchange(client, code).status_code == 200


def test_unsupported_grants_missing_fields_and_json_bodies_are_rejected() -> None:
    client = sandbox()
    grant = error_of(client.post("/oauth/v3/token", data={"grant_type": "client_credentials"}))
    assert grant["error"] == "unsupported_grant_type"
    missing = error_of(
        client.post(
            "/oauth/v3/token",
            data={
                "grant_type": "authorization_code",
                "client_id": APP.client_id,
                "client_secret": APP.client_secret,
            },
        )
    )
    assert (missing["error"], missing["error_description"]) == (
        "invalid_request",
        "missing required parameter code",
    )
    as_json = error_of(client.post("/oauth/v3/token", json={"grant_type": "refresh_token"}))
    assert as_json["error"] == "invalid_request"


def test_a_refresh_token_of_another_app_is_a_bad_refresh_token() -> None:
    other = OAuthAppConfig(6006, "client-6006", "secret-6006", (REDIRECT,), name="Other")
    cfg = SandboxConfig.default(
        oauth_apps=(APP, other), accounts=(AccountConfig(HUB_A),), clock=FakeClock()
    )
    client = TestClient(create_app(cfg))
    tokens = install(client)
    stolen = refresh(
        client, tokens["refresh_token"], client_id="client-6006", client_secret="secret-6006"
    )
    assert error_of(stolen)["status"] == "BAD_REFRESH_TOKEN"


# ---- access tokens on the Marketing Events API -----------------------------------------------
def test_an_access_token_expires_after_its_ttl_with_the_expired_authentication_body() -> None:
    clock = FakeClock()
    client = sandbox(clock, access_token_ttl_seconds=120)
    tokens = install(client)
    assert tokens["expires_in"] == 120
    clock.now += 119.5
    assert upsert(client, tokens["access_token"]).status_code == 200
    clock.now += 7.7  # 7.2 s past its end
    expired = upsert(client, tokens["access_token"])
    assert expired.status_code == 401
    body = expired.json()
    assert body["category"] == "EXPIRED_AUTHENTICATION" and body["status"] == "error"
    assert body["message"] == "The OAuth token used to make this call expired 7 second(s) ago."
    assert body["context"] == {"expire time": ["2027-01-15T08:02:00.000Z"]}  # 1.8e9 + 120 s
    assert body["correlationId"] == expired.headers["X-HubSpot-Correlation-Id"]
    renewed = refresh(client, tokens["refresh_token"]).json()
    assert upsert(client, renewed["access_token"]).status_code == 200


def test_an_unknown_token_is_invalid_authentication() -> None:
    client = sandbox()
    answer = upsert(client, "C" + "x" * 300)
    assert answer.status_code == 401
    assert answer.json()["category"] == "INVALID_AUTHENTICATION"
    assert answer.headers["X-HubSpot-Auth-Failure"] == "401 Unauthorized"


def test_admin_expire_makes_every_live_access_token_expired_at_once() -> None:
    client = sandbox()
    a, b = install(client, HUB_A), install(client, HUB_B)
    assert client.post("/_sandbox/tokens/expire").json() == {"expired": 2}
    for tokens in (a, b):
        answer = upsert(client, tokens["access_token"])
        assert answer.json()["category"] == "EXPIRED_AUTHENTICATION"
        assert answer.json()["message"].endswith("expired 0 second(s) ago.")
    assert client.post("/_sandbox/tokens/expire").json() == {"expired": 0}
    assert upsert(client, refresh(client, a["refresh_token"]).json()["access_token"]).is_success


def test_scopes_granted_at_install_are_enforced() -> None:
    client = sandbox()
    tokens = install(client)  # no contacts scope
    contact = client.post(
        "/crm/v3/objects/contacts",
        json={"properties": {"email": "a@example.com"}},
        headers=bearer(tokens["access_token"]),
    )
    assert contact.status_code == 403
    assert contact.json()["errors"][0]["context"] == {
        "requiredGranularScopes": [CONTACTS_WRITE_SCOPE]
    }
    wider = exchange(client, code_for(client, HUB_A, optional_scope=CONTACTS_WRITE_SCOPE)).json()
    allowed = client.post(
        "/crm/v3/objects/contacts",
        json={"properties": {"email": "a@example.com"}},
        headers=bearer(wider["access_token"]),
    )
    assert allowed.status_code == 201


# ---- metadata, introspect, revoke ------------------------------------------------------------
def test_v1_access_and_refresh_token_metadata() -> None:
    clock = FakeClock()
    client = sandbox(clock)
    tokens = install(client, HUB_B)
    clock.now += 100.4
    access = client.get(f"/oauth/v1/access-tokens/{tokens['access_token']}")
    assert access.status_code == 200
    assert access.json() == {
        "token": tokens["access_token"],
        "user": f"admin@sandbox-{HUB_B}.example.com",
        "hub_domain": f"sandbox-{HUB_B}.example.com",
        "scopes": ["oauth", READ_SCOPE, WRITE_SCOPE],
        "hub_id": HUB_B,
        "user_id": 9_000_000 + HUB_B % 1_000_000,
        "app_id": 5005,
        "expires_in": 1699,
        "token_type": "access",
    }
    info = client.get(f"/oauth/v1/refresh-tokens/{tokens['refresh_token']}").json()
    assert info["client_id"] == APP.client_id and info["token_type"] == "refresh"
    assert info["hub_id"] == HUB_B and info["token"] == tokens["refresh_token"]
    assert "expires_in" not in info and "app_id" not in info
    assert client.get("/oauth/v1/access-tokens/nope").status_code == 404
    clock.now += 2000
    assert client.get(f"/oauth/v1/access-tokens/{tokens['access_token']}").status_code == 404


def test_deleting_a_refresh_token_kills_only_that_token() -> None:
    client = sandbox()
    tokens = install(client)
    deleted = client.delete(f"/oauth/v1/refresh-tokens/{tokens['refresh_token']}")
    assert deleted.status_code == 204
    assert client.delete(f"/oauth/v1/refresh-tokens/{tokens['refresh_token']}").status_code == 404
    assert error_of(refresh(client, tokens["refresh_token"]))["status"] == "BAD_REFRESH_TOKEN"
    assert upsert(client, tokens["access_token"]).status_code == 200  # access token lives on
    (row,) = client.get("/_sandbox/installs").json()
    assert row["status"] == "installed" and row["hasRefreshToken"] is False
    fresh = install(client)  # re-authorizing mints a new refresh token
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert refresh(client, fresh["refresh_token"]).status_code == 200


@pytest.mark.parametrize("version", ["v3", "2026-03", "2026-09"])
def test_introspect_describes_live_tokens_and_answers_inactive_otherwise(version: str) -> None:
    client = sandbox()
    tokens = install(client, HUB_A)
    creds = {"client_id": APP.client_id, "client_secret": APP.client_secret}
    url = f"/oauth/{version}/token/introspect"
    access = client.post(url, data={**creds, "token": tokens["access_token"]}).json()
    assert access["active"] is True and access["token_use"] == "access_token"
    assert (access["hub_id"], access["app_id"], access["client_id"]) == (
        HUB_A,
        5005,
        APP.client_id,
    )
    assert access["token_type"] == "Bearer" and access["expires_in"] == 1800
    refresh_info = client.post(
        url, data={**creds, "token": tokens["refresh_token"], "token_type_hint": "refresh_token"}
    ).json()
    assert refresh_info["active"] is True and refresh_info["token_use"] == "refresh_token"
    unknown = client.post(url, data={**creds, "token": "who-knows"})
    assert unknown.status_code == 200 and unknown.json() == {"active": False}
    bad = client.post(url, data={**creds, "client_secret": "x", "token": tokens["access_token"]})
    assert error_of(bad)["error"] == "invalid_client"


def test_revoke_always_answers_200_and_revokes_the_apps_own_tokens() -> None:
    client = sandbox()
    tokens = install(client)
    creds = {"client_id": APP.client_id, "client_secret": APP.client_secret}
    url = "/oauth/2026-03/token/revoke"
    assert client.post(url, data={**creds, "token": "unknown"}).status_code == 200
    wrong = client.post(url, data={"client_id": APP.client_id, "token": tokens["refresh_token"]})
    assert wrong.status_code == 200
    assert refresh(client, tokens["refresh_token"]).status_code == 200  # not revoked
    assert client.post(url, data={**creds, "token": tokens["refresh_token"]}).status_code == 200
    assert error_of(refresh(client, tokens["refresh_token"]))["status"] == "BAD_REFRESH_TOKEN"
    assert client.post(url, data={**creds, "token": tokens["access_token"]}).status_code == 200
    assert upsert(client, tokens["access_token"]).json()["category"] == "INVALID_AUTHENTICATION"


# ---- uninstall -------------------------------------------------------------------------------
def test_admin_uninstall_revokes_refresh_tokens_and_by_default_access_tokens() -> None:
    client = sandbox()
    a, b = install(client, HUB_A), install(client, HUB_B)
    gone = client.post(f"/_sandbox/installs/{HUB_A}/uninstall")
    assert gone.status_code == 200 and gone.json()["status"] == "uninstalled"
    assert error_of(refresh(client, a["refresh_token"], "v3"))["status"] == "BAD_REFRESH_TOKEN"
    denied = upsert(client, a["access_token"])
    assert denied.status_code == 401 and denied.json()["category"] == "INVALID_AUTHENTICATION"
    assert upsert(client, b["access_token"]).status_code == 200  # the other account is intact
    assert refresh(client, b["refresh_token"]).status_code == 200
    statuses = {r["hubId"]: r["status"] for r in client.get("/_sandbox/installs").json()}
    assert statuses == {HUB_A: "uninstalled", HUB_B: "installed"}
    assert client.post(f"/_sandbox/installs/{HUB_A}/uninstall").status_code == 404
    assert "token" not in client.get("/_sandbox/installs").text.lower().replace(
        "hasrefreshtoken", ""
    )
    again = install(client, HUB_A)  # reinstalling works and mints a new refresh token
    assert again["refresh_token"] != a["refresh_token"]


def test_access_tokens_survive_an_uninstall_when_configured() -> None:
    client = sandbox(access_tokens_survive_uninstall=True)
    tokens = install(client)
    client.post(f"/_sandbox/installs/{HUB_A}/uninstall", json={"app_id": 5005}).raise_for_status()
    assert upsert(client, tokens["access_token"]).status_code == 200
    assert error_of(refresh(client, tokens["refresh_token"]))["status"] == "BAD_REFRESH_TOKEN"


def test_admin_uninstall_needs_an_app_id_when_several_oauth_apps_exist() -> None:
    other = OAuthAppConfig(6006, "client-6006", "secret-6006", (REDIRECT,), name="Other")
    cfg = SandboxConfig.default(oauth_apps=(APP, other), accounts=(AccountConfig(HUB_A),))
    client = TestClient(create_app(cfg))
    install(client)
    assert client.post(f"/_sandbox/installs/{HUB_A}/uninstall").status_code == 400
    assert client.post(f"/_sandbox/installs/{HUB_A}/uninstall?app_id=6006").status_code == 404
    done = client.post(f"/_sandbox/installs/{HUB_A}/uninstall?app_id=5005")
    assert done.status_code == 200 and done.json()["appId"] == 5005


@pytest.mark.parametrize("version", ["v3", "2026-03"])
def test_the_app_uninstalls_itself_with_its_access_token(version: str) -> None:
    client = sandbox()
    tokens = install(client, HUB_B)
    path = f"/appinstalls/{version}/external-install"
    answer = client.delete(path, headers=bearer(tokens["access_token"]))
    assert answer.status_code == 204
    assert error_of(refresh(client, tokens["refresh_token"]))["status"] == "BAD_REFRESH_TOKEN"
    assert client.delete(path, headers=bearer(tokens["access_token"])).status_code == 401
    private = client.delete(path, headers=bearer(SandboxConfig.default().apps[0].token))
    assert private.status_code == 403


def test_a_code_issued_before_an_uninstall_is_dead() -> None:
    client = sandbox()
    code = code_for(client, HUB_A)
    client.post(f"/_sandbox/installs/{HUB_A}/uninstall").raise_for_status()
    assert error_of(exchange(client, code))["status"] == "BAD_AUTH_CODE"


def test_the_request_log_names_oauth_calls_without_tokens() -> None:
    client = sandbox()
    tokens = install(client, HUB_B)
    client.get(f"/oauth/v1/access-tokens/{tokens['access_token']}")
    upsert(client, tokens["access_token"])
    log = client.get("/_sandbox/requests").json()
    assert [(r["operation"], r["hubId"], r["status"]) for r in log] == [
        ("oauth.authorize", HUB_B, 302),
        ("oauth.token", HUB_B, 200),
        ("oauth.access_token_info", HUB_B, 200),
        ("events.upsert", HUB_B, 200),
    ]
    assert log[3]["auth"] == "oauth" and log[3]["appId"] == 5005
    text = str(log)
    assert tokens["access_token"] not in text and tokens["refresh_token"] not in text


def test_a_reset_forgets_installs_and_tokens() -> None:
    client = sandbox()
    tokens = install(client)
    client.post("/_sandbox/reset").raise_for_status()
    assert client.get("/_sandbox/installs").json() == []
    assert upsert(client, tokens["access_token"]).status_code == 401
