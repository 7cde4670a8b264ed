"""An independent oracle: what HubSpot must show, computed straight from the contract's text.

Deliberately written without the normalizer's code or data structures, as a plain reading of
"What HubSpot must show in the end" in the platform contract.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Expected:
    """One (webinar, person)'s final participation."""

    state: str
    joined_at: int | None = None
    left_at: int | None = None


def person_key(participant: dict[str, Any]) -> str | None:
    """hubspotContactId when set, else the email trimmed and lower-cased; None if unusable."""
    if participant.get("hubspotContactId"):
        return f"vid:{participant['hubspotContactId']}"
    email = (participant.get("email") or "").strip().lower()
    return f"email:{email}" if email and EMAIL.match(email) else None


def expected_outcome(activities: list[dict[str, Any]],
                     webinars: dict[str, dict[str, Any]]) -> dict[tuple[str, str], Expected]:
    """(webinarId, person key) -> Expected, from every activity ever published (dupes too)."""
    unique = {a["activityId"]: a for a in activities}
    by_person: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for activity in unique.values():
        key = person_key(activity["participant"])
        if key is not None:
            by_person[(activity["webinarId"], key)].append(activity)
    result = {}
    for (webinar_id, key), acts in by_person.items():
        kinds = [(a, a["action"][0].rsplit(".", 1)[1]) for a in acts]
        joins = [a for a, k in kinds if k == "Joined"]
        if joins:
            webinar = webinars[webinar_id]
            left_by_session = {a["action"][1]["sessionId"]: a["occurredAt"]
                               for a, k in kinds if k == "Left"}
            ends: list[int] = []
            for join in joins:
                end = left_by_session.get(join["action"][1]["sessionId"], webinar.get("actualEnd"))
                if end is not None:  # an open connection of a webinar that has not ended
                    ends.append(end)
            result[(webinar_id, key)] = Expected(
                "ATTENDED", min(a["occurredAt"] for a in joins), max(ends))
            continue
        regs = [(a["occurredAt"], a["activityId"], k) for a, k in kinds
                if k in ("Registered", "RegistrationCancelled")]
        if regs:
            latest = max(regs)
            result[(webinar_id, key)] = Expected(
                "REGISTERED" if latest[2] == "Registered" else "CANCELLED")
    return result


def final_from_commands(commands: list[Any]) -> dict[tuple[str, str], Expected]:
    """Fold a command stream the way HubSpot would: the last Attendance per person wins."""
    final: dict[tuple[str, str], Expected] = {}
    for command in commands:
        body = command.body
        if type(body).__name__ != "Attendance":
            continue
        key = f"vid:{body.vid}" if body.vid is not None else f"email:{body.email}"
        final[(command.externalEventId, key)] = Expected(
            body.state, body.joinedAt if body.state == "ATTENDED" else None,
            body.leftAt if body.state == "ATTENDED" else None)
    return final
