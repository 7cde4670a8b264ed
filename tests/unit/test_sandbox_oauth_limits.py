"""Rate limits of OAuth calls: a rolling bucket per (app, account), 110 per 10 s by default, no
daily limit and no daily headers; private-app tokens keep their own limits."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.testclient import TestClient

from connector.sandbox import FaultConfig, SandboxConfig, Window, create_app
from connector.sandbox.config import FIRST_EXTRA_HUB_ID

LIST = "/marketing/v3/marketing-events/"
HUB_A, HUB_B = FIRST_EXTRA_HUB_ID, FIRST_EXTRA_HUB_ID + 1
DAILY_HEADERS = {"x-hubspot-ratelimit-daily", "x-hubspot-ratelimit-daily-remaining"}


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def sandbox(clock: FakeClock, **overrides: Any) -> tuple[TestClient, SandboxConfig]:
    cfg = SandboxConfig.multi_account(2, clock=clock, **overrides)
    return TestClient(create_app(cfg)), cfg


def install(client: TestClient, cfg: SandboxConfig, hub_id: int) -> dict[str, Any]:
    app = cfg.oauth_apps[0]
    page = client.get(
        f"/oauth/{hub_id}/authorize",
        params={
            "client_id": app.client_id,
            "redirect_uri": app.redirect_uris[0],
            "scope": " ".join(sorted(app.scopes)),
        },
        follow_redirects=False,
    )
    code = parse_qs(urlsplit(page.headers["location"]).query)["code"][0]
    answer = client.post(
        "/oauth/2026-03/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": app.redirect_uris[0],
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        },
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def call(client: TestClient, token: str) -> Any:
    return client.get(LIST, headers={"Authorization": f"Bearer {token}"})


def test_110_calls_per_10_s_per_install_with_headers_and_no_daily_limit() -> None:
    clock = FakeClock()
    client, cfg = sandbox(clock)
    a = install(client, cfg, HUB_A)["access_token"]
    b = install(client, cfg, HUB_B)["access_token"]
    remaining = []
    for _ in range(110):
        answer = call(client, a)
        assert answer.status_code == 200
        assert answer.headers["X-HubSpot-RateLimit-Max"] == "110"
        assert answer.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert not DAILY_HEADERS & set(answer.headers)
        remaining.append(int(answer.headers["X-HubSpot-RateLimit-Remaining"]))
    assert remaining == list(range(109, -1, -1))
    denied = call(client, a)
    assert denied.status_code == 429
    assert denied.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert not DAILY_HEADERS & set(denied.headers)
    body = denied.json()
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["groupName"] == f"publicapi:oauth-api-calls-ten-secondly:4004:{HUB_A}"
    other = call(client, b)  # another account's bucket is untouched
    assert other.status_code == 200 and other.headers["X-HubSpot-RateLimit-Remaining"] == "109"
    clock.now += 10.001
    assert call(client, a).status_code == 200
    counters = client.get("/_sandbox/counters", params={"hub_id": HUB_A}).json()
    assert counters["rateLimitedByPolicy"] == {"TEN_SECONDLY_ROLLING": 1}
    assert counters["requests"] == 112 + 2  # 111 + 1 calls, the authorize page and the token


def test_a_refreshed_token_shares_its_installs_bucket() -> None:
    clock = FakeClock()
    client, cfg = sandbox(clock, oauth_window_limit=3)
    tokens = install(client, cfg, HUB_A)
    for _ in range(3):
        assert call(client, tokens["access_token"]).headers["X-HubSpot-RateLimit-Max"] == "3"
    app = cfg.oauth_apps[0]
    renewed = client.post(
        "/oauth/v1/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        },
    ).json()
    assert call(client, renewed["access_token"]).status_code == 429


def test_private_app_tokens_keep_their_own_window_and_daily_budget() -> None:
    clock = FakeClock()
    client, cfg = sandbox(clock, window_limit=2, daily_limit=1000, oauth_window_limit=5)
    oauth = install(client, cfg, cfg.portal_id)["access_token"]  # OAuth in the default account
    private = cfg.apps[0].token
    first = call(client, private)
    assert first.headers["X-HubSpot-RateLimit-Max"] == "2"
    assert first.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "999"
    assert call(client, private).status_code == 200
    assert call(client, private).json()["policyName"] == "TEN_SECONDLY_ROLLING"
    via_oauth = call(client, oauth)
    assert via_oauth.status_code == 200 and via_oauth.headers["X-HubSpot-RateLimit-Max"] == "5"
    assert not DAILY_HEADERS & set(via_oauth.headers)
    clock.now += 11
    again = call(client, private)  # OAuth calls did not spend the account's daily budget
    assert again.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "997"


def test_oauth_limits_can_be_turned_off() -> None:
    client, cfg = sandbox(FakeClock(), oauth_window_limit=None)
    token = install(client, cfg, HUB_B)["access_token"]
    answers = [call(client, token) for _ in range(150)]
    assert {a.status_code for a in answers} == {200}
    assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in answers[-1].headers)


def test_an_injected_storm_answers_oauth_calls_with_their_installs_429() -> None:
    clock = FakeClock()
    storm = FaultConfig(storm=Window(clock.now, 60))
    client, cfg = sandbox(clock, faults=storm)
    token = install(client, cfg, HUB_B)["access_token"]
    answer = call(client, token)
    assert answer.status_code == 429
    assert answer.json()["groupName"] == f"publicapi:oauth-api-calls-ten-secondly:4004:{HUB_B}"
    assert answer.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert not DAILY_HEADERS & set(answer.headers)
