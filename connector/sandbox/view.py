"""What the sandbox shows, in the oracle's terms: (externalEventId, person) -> final state.

Reads the admin state document (`GET /_sandbox/state`). A person is `vid:<id>` when the contact
was written by id and `email:<address>` otherwise, as connector.sample.oracle keys them; pass
`by_vid` with the contact ids the platform knew (written by vid) to tell the two apart.
"""

from __future__ import annotations

from typing import Any

from connector.sample.oracle import Expected


def final_state(state: dict[str, Any], by_vid: set[int]) -> dict[tuple[str, str], Expected]:
    """Each participation's current state, with joinedAt/leftAt when ATTENDED.

    NO_SHOW (registered, never attended, event completed) is reported as REGISTERED, which is
    what the connector wrote; `counters` in the state document shows HubSpot's own NO_SHOW view.
    """
    events = {str(e["object_id"]): e for e in state["events"]}
    emails = {int(c["vid"]): c["email"] for c in state["contacts"]}
    result: dict[tuple[str, str], Expected] = {}
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
