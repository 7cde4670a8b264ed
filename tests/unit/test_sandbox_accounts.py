"""Many HubSpot accounts in one sandbox: configuration, one isolated store per account (events,
contacts, participations, lists), per-account persistence, and the admin endpoints' `?hub_id=`."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from connector.sandbox import AccountConfig, AppConfig, OAuthAppConfig, SandboxConfig, create_app
from connector.sandbox.config import FIRST_EXTRA_HUB_ID

P = "/marketing/v3/marketing-events"
HUB_A, HUB_B = FIRST_EXTRA_HUB_ID, FIRST_EXTRA_HUB_ID + 1
DEFAULT_HUB = 62515


# ---- configuration ---------------------------------------------------------------------------
def test_the_default_config_is_one_account_with_one_private_and_one_oauth_app() -> None:
    cfg = SandboxConfig.default()
    assert cfg.hub_ids == (DEFAULT_HUB,) and cfg.portal_id == DEFAULT_HUB
    assert [a.app_id for a in cfg.apps] == [1001] and [a.app_id for a in cfg.oauth_apps] == [4004]


def test_multi_account_adds_numbered_accounts_after_the_default_one() -> None:
    assert SandboxConfig.multi_account(3).hub_ids == (
        DEFAULT_HUB,
        70000001,
        70000002,
        70000003,
    )
    assert SandboxConfig.multi_account(hub_ids=[5, 6]).hub_ids == (DEFAULT_HUB, 5, 6)
    listed = SandboxConfig.default(accounts=(AccountConfig(9), AccountConfig(DEFAULT_HUB)))
    assert listed.hub_ids == (DEFAULT_HUB, 9)  # the default account always comes first


def test_config_rejects_duplicate_hubs_apps_and_client_ids() -> None:
    with pytest.raises(ValueError, match="hub ids must be unique"):
        SandboxConfig.multi_account(hub_ids=[7, 7])
    clash = OAuthAppConfig(1001, "c", "s", ("https://x.example.com/cb",))
    with pytest.raises(ValueError, match="app_id values must be unique"):
        SandboxConfig.default(oauth_apps=(clash,))
    twins = tuple(
        OAuthAppConfig(i, "same-client", "s", ("https://x.example.com/cb",)) for i in (8, 9)
    )
    with pytest.raises(ValueError, match="client_id values must be unique"):
        SandboxConfig.default(oauth_apps=twins)
    with pytest.raises(ValueError, match="access_token_ttl_seconds"):
        SandboxConfig.default(access_token_ttl_seconds=0)


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("https://app.example.com/oauth/callback", True),
        ("http://localhost:8080/cb", True),
        ("http://app.example.com/cb", False),  # https except localhost
        ("https://10.0.0.1/cb", False),  # no IPs
        ("http://127.0.0.1:3000/cb", False),
        ("/relative", False),
    ],
)
def test_redirect_uris_follow_hubspots_rules(uri: str, ok: bool) -> None:
    if ok:
        assert OAuthAppConfig(1, "c", "s", (uri,)).redirect_uris == (uri,)
    else:
        with pytest.raises(ValueError, match="redirect URI"):
            OAuthAppConfig(1, "c", "s", (uri,))


def test_oauth_app_repr_masks_the_secret() -> None:
    app = OAuthAppConfig(1, "client-1", "top-secret-value", ("https://x.example.com/cb",))
    assert "top-secret-value" not in repr(app) and "client-1" in repr(app)
    assert "top-secret-value" not in repr(SandboxConfig.default(oauth_apps=(app,)))


# ---- one store per account -------------------------------------------------------------------
class Hubs:
    """A multi-account sandbox and an OAuth access token per account."""

    def __init__(self, persist_path: Path | None = None, count: int = 2) -> None:
        self.cfg = SandboxConfig.multi_account(
            count, window_limit=None, daily_limit=None, persist_path=persist_path
        )
        self.client = TestClient(create_app(self.cfg))
        self.private = {"Authorization": f"Bearer {self.cfg.apps[0].token}"}
        self.tokens: dict[int, dict[str, str]] = {}

    def auth(self, hub_id: int) -> dict[str, str]:
        if hub_id == DEFAULT_HUB:
            return self.private
        if hub_id not in self.tokens:
            self.tokens[hub_id] = {"Authorization": f"Bearer {self._install(hub_id)}"}
        return self.tokens[hub_id]

    def _install(self, hub_id: int) -> str:
        app = self.cfg.oauth_apps[0]
        page = self.client.get(
            "/oauth/authorize",
            params={
                "client_id": app.client_id,
                "redirect_uri": app.redirect_uris[0],
                "scope": " ".join(app.scopes),
                "hub_id": str(hub_id),
            },
            follow_redirects=False,
        )
        code = parse_qs(urlsplit(page.headers["location"]).query)["code"][0]
        answer = self.client.post(
            "/oauth/v3/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": app.redirect_uris[0],
                "client_id": app.client_id,
                "client_secret": app.client_secret,
            },
        )
        return str(answer.json()["access_token"])

    def upsert(self, hub_id: int, external_id: str, name: str) -> dict[str, Any]:
        body = {
            "externalAccountId": "tenant",
            "externalEventId": external_id,
            "eventName": name,
            "eventOrganizer": "Ops",
        }
        answer = self.client.put(f"{P}/events/{external_id}", json=body, headers=self.auth(hub_id))
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def register(self, hub_id: int, external_id: str, email: str) -> Any:
        return self.client.post(
            f"{P}/attendance/{external_id}/register/email-create?externalAccountId=tenant",
            json={"inputs": [{"email": email, "interactionDateTime": 1_700_000_000_000}]},
            headers=self.auth(hub_id),
        )

    def admin(self, what: str, hub_id: int | None = None, **query: str) -> Any:
        params = query if hub_id is None else {**query, "hub_id": str(hub_id)}
        answer = self.client.get(f"/_sandbox/{what}", params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()


def test_the_same_external_event_id_in_two_accounts_is_two_events() -> None:
    hubs = Hubs()
    a = hubs.upsert(HUB_A, "webinar-1", "In A")
    b = hubs.upsert(HUB_B, "webinar-1", "In B")
    assert a["objectId"] != b["objectId"]  # object ids are unique across accounts
    for hub_id, name in ((HUB_A, "In A"), (HUB_B, "In B")):
        got = hubs.client.get(
            f"{P}/events/webinar-1?externalAccountId=tenant", headers=hubs.auth(hub_id)
        ).json()
        assert got["eventName"] == name
        ids = hubs.client.get(f"{P}/webinar-1/identifiers", headers=hubs.auth(hub_id)).json()
        assert ids["total"] == 1 and ids["results"][0]["marketingEventName"] == name
        listed = hubs.client.get(f"{P}/", headers=hubs.auth(hub_id)).json()["results"]
        assert [e["eventName"] for e in listed] == [name]
    assert [e["event_name"] for e in hubs.admin("events", HUB_A)] == ["In A"]
    assert [e["event_name"] for e in hubs.admin("events", HUB_B)] == ["In B"]
    assert hubs.admin("events") == []  # the default account has none
    other = hubs.client.get(f"{P}/{a['objectId']}", headers=hubs.auth(HUB_B))
    assert other.status_code == 404  # another account's objectId is unknown here


def test_private_app_tokens_address_the_default_account() -> None:
    hubs = Hubs()
    hubs.upsert(DEFAULT_HUB, "w", "Default")
    assert [e["event_name"] for e in hubs.admin("events")] == ["Default"]
    assert hubs.admin("events", DEFAULT_HUB) == hubs.admin("events")
    assert hubs.admin("events", HUB_A) == []


def test_contacts_participations_and_counters_are_per_account() -> None:
    hubs = Hubs()
    hubs.upsert(HUB_A, "w", "A")
    hubs.upsert(HUB_B, "w", "B")
    assert hubs.register(HUB_A, "w", "pat@example.com").json()["results"][0]["vid"]
    assert hubs.register(HUB_A, "w", "sam@example.com").status_code == 200
    assert hubs.register(HUB_B, "w", "pat@example.com").status_code == 200
    assert sorted(c["email"] for c in hubs.admin("contacts", HUB_A)) == [
        "pat@example.com",
        "sam@example.com",
    ]
    assert [c["email"] for c in hubs.admin("contacts", HUB_B)] == ["pat@example.com"]
    assert len(hubs.admin("participations", HUB_A)) == 2
    assert len(hubs.admin("participations", HUB_B)) == 1
    (event_a,) = hubs.admin("events", HUB_A)
    assert event_a["counters"]["registered"] == 2
    state_b = hubs.admin("state", HUB_B)
    assert state_b["hubId"] == HUB_B and state_b["events"][0]["counters"]["registered"] == 1
    assert hubs.admin("counters", HUB_A)["interactions"] == 2
    assert hubs.admin("counters", HUB_B)["interactions"] == 1
    assert hubs.admin("counters")["interactions"] == 3  # without hub_id: every account
    contact_in_b = hubs.client.get(
        "/crm/v3/objects/contacts/sam@example.com?idProperty=email", headers=hubs.auth(HUB_B)
    )
    assert contact_in_b.status_code == 404


def test_lists_are_per_account() -> None:
    hubs = Hubs()
    created = hubs.client.post(
        "/_sandbox/lists", params={"hub_id": str(HUB_A)}, json={"listId": "9", "name": "VIP"}
    )
    assert created.status_code == 201
    assert [x["list_id"] for x in hubs.admin("lists", HUB_A)] == ["9"]
    assert hubs.admin("lists", HUB_B) == [] and hubs.admin("lists") == []


def test_the_request_log_and_counters_name_the_account() -> None:
    hubs = Hubs()
    hubs.upsert(HUB_B, "w", "B")
    hubs.upsert(DEFAULT_HUB, "w", "D")
    upserts = hubs.admin("requests", operation="events.upsert")
    assert [(r["hubId"], r["appId"], r["auth"]) for r in upserts] == [
        (HUB_B, 4004, "oauth"),
        (DEFAULT_HUB, 1001, "private_app"),
    ]
    only_b = hubs.admin("requests", HUB_B)
    assert {r["hubId"] for r in only_b} == {HUB_B}
    assert [r["operation"] for r in only_b] == ["oauth.authorize", "oauth.token", "events.upsert"]
    assert hubs.admin("counters", HUB_B)["byOperation"] == {
        "oauth.authorize": 1,
        "oauth.token": 1,
        "events.upsert": 1,
    }
    assert hubs.admin("counters", DEFAULT_HUB)["requests"] == 1


def test_admin_answers_404_for_an_unknown_account() -> None:
    hubs = Hubs()
    for what in ("state", "events", "contacts", "participations", "lists", "counters"):
        answer = hubs.client.get(f"/_sandbox/{what}", params={"hub_id": "123"})
        assert answer.status_code == 404 and "123" in answer.json()["error"]


def test_accounts_are_listed() -> None:
    hubs = Hubs(count=1)
    hubs.upsert(HUB_A, "w", "A")
    assert hubs.admin("accounts") == [
        {
            "hubId": DEFAULT_HUB,
            "domain": f"sandbox-{DEFAULT_HUB}.example.com",
            "user": f"admin@sandbox-{DEFAULT_HUB}.example.com",
            "userId": 9_000_000 + DEFAULT_HUB,
            "default": True,
            "events": 0,
        },
        {
            "hubId": HUB_A,
            "domain": f"sandbox-{HUB_A}.example.com",
            "user": f"admin@sandbox-{HUB_A}.example.com",
            "userId": 9_000_000 + HUB_A % 1_000_000,
            "default": False,
            "events": 1,
        },
    ]


def test_a_reset_of_one_account_keeps_the_others_and_the_installs() -> None:
    hubs = Hubs()
    hubs.upsert(HUB_A, "w", "A")
    hubs.upsert(HUB_B, "w", "B")
    hubs.client.post("/_sandbox/reset", json={"hub_id": HUB_A}).raise_for_status()
    assert hubs.admin("events", HUB_A) == []
    assert len(hubs.admin("events", HUB_B)) == 1
    assert len(hubs.admin("installs")) == 2
    hubs.upsert(HUB_A, "w", "A again")  # its token still works
    bad = hubs.client.post("/_sandbox/reset", json={"hub_id": 5})
    assert bad.status_code == 400


def test_app_settings_are_per_app_whatever_the_account() -> None:
    hubs = Hubs()
    url = "https://connector.example.com/events/%s"
    saved = hubs.client.post(
        f"{P}/4004/settings", json={"eventDetailsUrl": url}, headers=hubs.auth(HUB_A)
    )
    assert saved.status_code == 200
    got = hubs.client.get(f"{P}/4004/settings", headers=hubs.auth(HUB_B))
    assert got.json() == {"appId": 4004, "eventDetailsUrl": url}
    by_key = hubs.client.get(f"{P}/4004/settings?hapikey=sandbox-developer-key-4004")
    assert by_key.json()["eventDetailsUrl"] == url
    foreign = hubs.client.get(f"{P}/1001/settings", headers=hubs.auth(HUB_A))
    assert foreign.status_code == 403
    logged = hubs.admin("requests", operation="settings.get")
    assert [r["query"] for r in logged] == ["", "hapikey=***", ""]  # the key is masked


# ---- persistence -----------------------------------------------------------------------------
def test_each_account_persists_in_its_own_file(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.sqlite"
    hubs = Hubs(db)
    with hubs.client:
        hubs.upsert(DEFAULT_HUB, "w-default", "D")
        hubs.upsert(HUB_B, "w-b", "B")
        assert hubs.register(HUB_B, "w-b", "pat@example.com").status_code == 200
    assert db.exists() and (tmp_path / f"sandbox-hub{HUB_B}.sqlite").exists()
    again = Hubs(db)
    with again.client:
        assert [e["event_name"] for e in again.admin("events")] == ["D"]
        assert [e["event_name"] for e in again.admin("events", HUB_B)] == ["B"]
        assert [c["email"] for c in again.admin("contacts", HUB_B)] == ["pat@example.com"]
        assert again.admin("events", HUB_A) == []
        fresh = again.upsert(HUB_B, "w-b2", "B2")  # ids keep counting after a restart
        (old,) = (e for e in again.admin("events", HUB_B) if e["external_event_id"] == "w-b")
        assert int(fresh["objectId"]) == int(old["object_id"]) + 1


def test_private_apps_still_need_a_token() -> None:
    with pytest.raises(ValueError):
        AppConfig(app_id=1, token="", client_secret="s")
