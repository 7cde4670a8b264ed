"""The sample against a HubSpot sandbox, in the oracle's terms.

:func:`create_known_contacts` creates the contacts the platform already matched people to;
:func:`hubspot_view` reads what the sandbox shows (its admin state document,
``GET /_sandbox/state``) as (externalEventId, person) -> :class:`~connector.sample.oracle.Expected`,
to compare with what the input predicts. A person is ``vid:<id>`` when the contact was written by
id and ``email:<address>`` otherwise, as the oracle keys them; pass ``by_vid`` with the contact ids
the platform knew (written by vid) to tell the two apart. A sandbox with several HubSpot
accounts is read one account at a time: pass ``hub_id`` (default: the sandbox's default account).
"""

from __future__ import annotations

from typing import Any

import httpx

from connector.sample.oracle import Expected

View = dict[tuple[str, str], Expected]


def create_known_contacts(url: str, token: str, count: int) -> tuple[int, ...]:
    """Contacts the platform already matched people to exist in HubSpot before attendance."""
    ids = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
        for n in range(count):
            response = http.post("/crm/v3/objects/contacts", json={"properties": {
                "email": f"known.{n}@customer.example.com", "firstname": f"Known{n}"}})
            response.raise_for_status()
            ids.append(int(response.json()["id"]))
    return tuple(ids)


def hubspot_view(url: str, by_vid: set[int], *, hub_id: int | None = None
                 ) -> tuple[View, dict[str, Any]]:
    """What the sandbox at ``url`` shows (see :func:`final_state`), and its state document: of
    HubSpot account ``hub_id`` (default: the sandbox's default account)."""
    params = {} if hub_id is None else {"hub_id": str(hub_id)}
    response = httpx.get(f"{url}/_sandbox/state", params=params, timeout=10)
    response.raise_for_status()
    state = response.json()
    return final_state(state, by_vid), state


def final_state(state: dict[str, Any], by_vid: set[int]) -> View:
    """Each participation's current state, with joinedAt/leftAt when ATTENDED.

    NO_SHOW (registered, never attended, event completed) is reported as REGISTERED, which is
    what the connector wrote; `counters` in the state document shows HubSpot's own NO_SHOW view.
    """
    events = {str(e["object_id"]): e for e in state["events"]}
    emails = {int(c["vid"]): c["email"] for c in state["contacts"]}
    result: View = {}
    for row in state["participations"]:
        event = events.get(str(row["object_id"]))
        if event is None or not row["interactions"]:
            continue
        vid = int(row["vid"])
        person = f"vid:{vid}" if vid in by_vid else f"email:{emails.get(vid)}"
        current = row["interactions"][0]
        for interaction in row["interactions"]:  # as the sandbox decides: later wins ties
            if interaction["occurred_at"] >= current["occurred_at"]:
                current = interaction
        attended = current["state"] == "ATTENDED"
        result[(event["external_event_id"], person)] = Expected(
            current["state"],
            current.get("joined_at") if attended else None,
            current.get("left_at") if attended else None)
    return result
