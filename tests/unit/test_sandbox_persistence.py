"""SQLite persistence: a restarted sandbox keeps events, contacts, participations, lists,
settings, and keeps allocating fresh ids."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from connector.sandbox import SandboxConfig, create_app

P = "/marketing/v3/marketing-events"


def _client(path: Path) -> tuple[TestClient, dict[str, str], int]:
    cfg = SandboxConfig.default(window_limit=None, daily_limit=None, persist_path=path)
    return (
        TestClient(create_app(cfg)),
        {"Authorization": f"Bearer {cfg.apps[0].token}"},
        cfg.apps[0].app_id,
    )


def test_state_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.sqlite"
    client, auth, app_id = _client(db)
    with client:
        created = client.post(
            f"{P}/events",
            headers=auth,
            json={
                "externalAccountId": "a",
                "externalEventId": "e",
                "eventName": "E",
                "eventOrganizer": "O",
                "customProperties": [{"name": "k", "value": "v"}],
            },
        ).json()
        client.post(
            f"{P}/attendance/e/register/email-create?externalAccountId=a",
            headers=auth,
            json={"inputs": [{"email": "x@example.com", "interactionDateTime": 5}]},
        )
        client.put(f"{P}/associations/a/e/lists/77", headers=auth)
        client.post(
            f"{P}/{app_id}/settings",
            headers=auth,
            json={"eventDetailsUrl": "https://my.event.app/%s"},
        )
        doomed = client.post(
            f"{P}/events",
            headers=auth,
            json={
                "externalAccountId": "a",
                "externalEventId": "gone",
                "eventName": "G",
                "eventOrganizer": "O",
            },
        ).json()
        client.delete(f"{P}/{doomed['objectId']}", headers=auth)

    client, auth, app_id = _client(db)
    with client:
        event = client.get(f"{P}/events/e?externalAccountId=a", headers=auth).json()
        assert event["objectId"] == created["objectId"] and event["registrants"] == 1
        assert event["customProperties"][0]["value"] == "v"
        assert client.get(f"{P}/{doomed['objectId']}", headers=auth).status_code == 404
        lists = client.get(f"{P}/associations/a/e/lists", headers=auth).json()
        assert [x["listId"] for x in lists["results"]] == ["77"]
        assert client.get(f"{P}/{app_id}/settings", headers=auth).json()["eventDetailsUrl"] == (
            "https://my.event.app/%s"
        )
        contact = client.get(
            "/crm/v3/objects/contacts/x@example.com?idProperty=email", headers=auth
        ).json()
        breakdown = client.get(
            f"{P}/participations/contacts/{contact['id']}/breakdown", headers=auth
        ).json()
        assert breakdown["total"] == 1
        again = client.post(
            f"{P}/events",
            headers=auth,
            json={
                "externalAccountId": "a",
                "externalEventId": "e2",
                "eventName": "E2",
                "eventOrganizer": "O",
            },
        ).json()
        assert int(again["objectId"]) > int(doomed["objectId"])


def test_reset_clears_persisted_state(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    client, auth, _ = _client(db)
    with client:
        client.post(
            f"{P}/events",
            headers=auth,
            json={
                "externalAccountId": "a",
                "externalEventId": "e",
                "eventName": "E",
                "eventOrganizer": "O",
            },
        )
        client.post("/_sandbox/reset")
    client, auth, _ = _client(db)
    with client:
        assert client.get(f"{P}/", headers=auth).json() == {"results": []}
