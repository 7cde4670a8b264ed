"""Participation rules: idempotency, latest-state wins, counters from current state, NO_SHOW,
attendance duration, contactProperties only on creation, unknown vid as a per-input error."""

from __future__ import annotations

from starlette.testclient import TestClient

from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.attendance import parse_subscriber_state

P = "/marketing/v3/marketing-events"
T0 = 1_716_382_579_000


class FakeClock:
    def __init__(self, now: float = 1_716_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _setup(clock: FakeClock | None = None) -> tuple[TestClient, dict[str, str]]:
    cfg = SandboxConfig.default(window_limit=None, daily_limit=None, clock=clock or FakeClock())
    client = TestClient(create_app(cfg))
    auth = {"Authorization": f"Bearer {cfg.apps[0].token}"}
    client.post(
        f"{P}/events",
        headers=auth,
        json={
            "externalAccountId": "a",
            "externalEventId": "e",
            "eventName": "E",
            "eventOrganizer": "O",
        },
    ).raise_for_status()
    return client, auth


def _email(
    client: TestClient, auth: dict[str, str], state: str, email: str, at: int, **extra: object
) -> dict[str, object]:
    answer = client.post(
        f"{P}/attendance/e/{state}/email-create?externalAccountId=a",
        headers=auth,
        json={"inputs": [{"email": email, "interactionDateTime": at, **extra}]},
    )
    assert answer.status_code == 200
    body: dict[str, object] = answer.json()
    return body


def _counters(client: TestClient, auth: dict[str, str]) -> dict[str, int]:
    counters: dict[str, int] = client.get(f"{P}/participations/a/e", headers=auth).json()
    return counters


def test_subscriber_state_spellings() -> None:
    assert parse_subscriber_state("register") == parse_subscriber_state("REGISTERED")
    assert parse_subscriber_state("Attend") == "ATTENDED"
    assert parse_subscriber_state("cancel") == "CANCELLED"
    assert parse_subscriber_state("no_show") is None


def test_repeating_the_same_interaction_is_idempotent() -> None:
    client, auth = _setup()
    for _ in range(3):
        _email(client, auth, "register", "x@example.com", T0)
    participations = client.get("/_sandbox/participations").json()
    assert len(participations) == 1 and len(participations[0]["interactions"]) == 1
    assert len(client.get("/_sandbox/contacts").json()) == 1
    assert _counters(client, auth) == {"attended": 0, "registered": 1, "cancelled": 0, "noShows": 0}


def test_latest_interaction_wins_even_when_it_arrives_first() -> None:
    client, auth = _setup()
    _email(client, auth, "cancel", "x@example.com", T0 + 60_000)
    _email(client, auth, "register", "x@example.com", T0)  # older, arrives late
    assert _counters(client, auth)["cancelled"] == 1
    _email(client, auth, "register", "x@example.com", T0 + 120_000)  # re-register
    assert _counters(client, auth) == {"attended": 0, "registered": 1, "cancelled": 0, "noShows": 0}
    rows = client.get(f"{P}/participations/a/e/breakdown", headers=auth).json()
    assert rows["total"] == 1 and rows["results"][0]["properties"]["occurredAt"] == T0 + 120_000


def test_no_show_once_the_event_is_completed_or_over() -> None:
    clock = FakeClock()
    client, auth = _setup(clock)
    _email(client, auth, "register", "never@example.com", T0)
    _email(client, auth, "register", "came@example.com", T0)
    _email(client, auth, "attend", "came@example.com", T0 + 1)
    assert _counters(client, auth)["noShows"] == 0
    client.post(
        f"{P}/events/e/complete?externalAccountId=a",
        headers=auth,
        json={
            "startDateTime": "2030-01-01T10:00:00Z",
            "endDateTime": "2030-01-01T11:00:00Z",
        },
    ).raise_for_status()
    assert _counters(client, auth) == {"attended": 1, "registered": 0, "cancelled": 0, "noShows": 1}
    no_show = client.get(f"{P}/participations/a/e/breakdown?state=NO_SHOW", headers=auth).json()
    assert [r["associations"]["contact"]["email"] for r in no_show["results"]] == [
        "never@example.com"
    ]


def test_no_show_after_end_date_time_passes() -> None:
    clock = FakeClock()
    client, auth = _setup(clock)
    client.patch(
        f"{P}/events/e?externalAccountId=a",
        headers=auth,
        json={"endDateTime": "2024-05-20T00:00:00Z"},
    ).raise_for_status()
    _email(client, auth, "register", "late@example.com", T0)
    assert _counters(client, auth)["noShows"] == 0  # clock is before the end
    clock.now = 1_716_163_200.0  # 2024-05-20T00:00:00Z
    assert _counters(client, auth)["noShows"] == 1


def test_attendance_duration_from_joined_and_left() -> None:
    client, auth = _setup()
    _email(
        client,
        auth,
        "attend",
        "d@example.com",
        T0,
        properties={"joinedAt": "2024-05-22T13:00:00Z", "leftAt": "2024-05-22T13:30:00Z"},
    )
    _email(
        client,
        auth,
        "attend",
        "d@example.com",
        T0 + 1,
        properties={"joinedAt": "2024-05-22T14:00:00Z", "leftAt": "2024-05-22T14:10:00.500Z"},
    )
    row = client.get(f"{P}/participations/a/e/breakdown", headers=auth).json()["results"][0]
    assert row["properties"]["attendanceDurationSeconds"] == 1800 + 600


def test_join_times_only_for_attend_and_only_known_properties() -> None:
    client, auth = _setup()
    body = _email(
        client,
        auth,
        "register",
        "p@example.com",
        T0,
        properties={"joinedAt": "2024-05-22T13:00:00Z"},
    )
    assert body["numErrors"] == 1 and body["results"] == []
    body = _email(client, auth, "attend", "p@example.com", T0, properties={"color": "red"})
    assert body["numErrors"] == 1


def test_contact_properties_apply_only_when_the_contact_is_created() -> None:
    client, auth = _setup()
    _email(client, auth, "register", "c@example.com", T0, contactProperties={"firstname": "A"})
    _email(client, auth, "attend", "c@example.com", T0 + 1, contactProperties={"firstname": "B"})
    contact = client.get(
        "/crm/v3/objects/contacts/c@example.com?idProperty=email", headers=auth
    ).json()
    assert contact["properties"]["firstname"] == "A"


def test_unknown_vid_is_a_per_input_error_beside_successes() -> None:
    client, auth = _setup()
    vid = int(
        client.post(
            "/crm/v3/objects/contacts",
            headers=auth,
            json={"properties": {"email": "k@example.com"}},
        ).json()["id"]
    )
    answer = client.post(
        f"{P}/attendance/e/register/create?externalAccountId=a",
        headers=auth,
        json={
            "inputs": [
                {"vid": vid, "interactionDateTime": T0},
                {"vid": 42, "interactionDateTime": T0},
            ]
        },
    )
    body = answer.json()
    assert answer.status_code == 200 and body["results"] == [{"vid": vid}]
    assert body["numErrors"] == 1
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert body["errors"][0]["context"] == {"vids": ["42"]}


def test_malformed_attendance_body_is_a_whole_request_400() -> None:
    client, auth = _setup()
    answer = client.post(
        f"{P}/attendance/e/register/create?externalAccountId=a",
        headers=auth,
        json={"inputs": [{"vid": 1}]},
    )
    assert answer.status_code == 400 and answer.json()["category"] == "VALIDATION_ERROR"
    bad_state = client.post(
        f"{P}/attendance/e/maybe/create?externalAccountId=a", headers=auth, json={"inputs": []}
    )
    assert bad_state.status_code == 400
