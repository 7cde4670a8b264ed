"""Rate limits: rolling 10-second window per app, daily budget per account, headers, 429 body."""

from __future__ import annotations

from starlette.testclient import TestClient

from connector.sandbox import AppConfig, SandboxConfig, create_app
from connector.sandbox.ratelimit import DAILY, TEN_SECONDLY, RateLimiter

LIST = "/marketing/v3/marketing-events/"


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_rolling_window_admits_again_once_old_requests_age_out() -> None:
    clock = FakeClock()
    limiter = RateLimiter(window_limit=2, window_seconds=10, daily_limit=None, clock=clock)
    assert limiter.admit(1).is_allowed
    clock.now += 4
    assert limiter.admit(1).is_allowed
    clock.now += 5.9
    denied = limiter.admit(1)
    assert denied.policy == TEN_SECONDLY
    assert denied.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert limiter.admit(2).is_allowed  # per app
    clock.now += 0.2  # first request is now older than 10 s
    allowed = limiter.admit(1)
    assert allowed.is_allowed and allowed.headers["X-HubSpot-RateLimit-Remaining"] == "0"


def test_daily_budget_is_per_account_and_resets_at_midnight() -> None:
    clock = FakeClock(86400.0 * 20000 + 86000)  # 400 s before midnight UTC
    limiter = RateLimiter(window_limit=None, window_seconds=10, daily_limit=3, clock=clock)
    assert limiter.admit(1).is_allowed and limiter.admit(2).is_allowed
    last = limiter.admit(1)
    assert last.headers == {
        "X-HubSpot-RateLimit-Daily": "3",
        "X-HubSpot-RateLimit-Daily-Remaining": "0",
    }
    assert limiter.admit(2).policy == DAILY
    clock.now += 400
    assert limiter.admit(2).is_allowed


def test_account_time_zone_shifts_the_daily_reset() -> None:
    clock = FakeClock(86400.0 * 20000 - 3600 * 2)  # 22:00 UTC = 00:00 at UTC+2
    limiter = RateLimiter(
        window_limit=None, window_seconds=10, daily_limit=1, clock=clock, utc_offset_hours=2
    )
    assert limiter.admit(1).is_allowed
    clock.now += 3600  # 23:00 UTC: still the same day in UTC+2
    assert not limiter.admit(1).is_allowed


def test_app_answers_429_with_hubspot_body_and_headers_and_counts_it() -> None:
    clock = FakeClock()
    other = AppConfig(app_id=7, token="other-token", client_secret="s")
    base = SandboxConfig.default()
    cfg = base.replace(apps=(*base.apps, other), window_limit=2, daily_limit=100, clock=clock)
    client = TestClient(create_app(cfg))
    auth = {"Authorization": f"Bearer {cfg.apps[0].token}"}
    first = client.get(LIST, headers=auth)
    assert first.headers["X-HubSpot-RateLimit-Max"] == "2"
    assert first.headers["X-HubSpot-RateLimit-Remaining"] == "1"
    assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert first.headers["X-HubSpot-RateLimit-Daily"] == "100"
    assert first.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "99"
    assert client.get(LIST, headers=auth).status_code == 200
    limited = client.get(LIST, headers=auth)
    assert limited.status_code == 429
    body = limited.json()
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["groupName"].endswith(f":{cfg.apps[0].app_id}:{cfg.portal_id}")
    assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert client.get(LIST, headers={"Authorization": "Bearer other-token"}).status_code == 200
    clock.now += 10
    assert client.get(LIST, headers=auth).status_code == 200
    stats = client.get("/_sandbox/counters").json()
    assert stats["rateLimited"] == 1 and stats["byStatus"]["429"] == 1


def test_daily_429_body_and_limits_off_means_no_headers() -> None:
    cfg = SandboxConfig.default(window_limit=None, daily_limit=1, clock=FakeClock())
    client = TestClient(create_app(cfg))
    auth = {"Authorization": f"Bearer {cfg.apps[0].token}"}
    assert "X-HubSpot-RateLimit-Max" not in client.get(LIST, headers=auth).headers
    body = client.get(LIST, headers=auth).json()
    assert body["policyName"] == "DAILY" and body["message"] == "You have reached your daily limit."
    off = TestClient(create_app(SandboxConfig.default(window_limit=None, daily_limit=None)))
    answer = off.get(LIST, headers=auth)
    assert answer.status_code == 200
    assert not [h for h in answer.headers if h.lower().startswith("x-hubspot-ratelimit")]
    assert answer.headers["X-HubSpot-Correlation-Id"]
