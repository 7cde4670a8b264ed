"""Participation rules (pure): subscriber states, idempotency, current state, NO_SHOW, counters.

* A contact's participation in an event keeps every distinct interaction; the key
  (state, interactionDateTime) makes repeats idempotent (reference §3.9, guide).
* The current state is the interaction with the latest interactionDateTime (ties: the one
  recorded last). Counters count each contact once, by current state (guide: "only the current
  state of a participant is included").
* NO_SHOW: current state REGISTERED, never ATTENDED, and the event is over (eventCompleted, or
  endDateTime before now) — derived, never written (reference §8, inferred).
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.sandbox.models import (
    ATTENDED,
    CANCELLED,
    NO_SHOW,
    REGISTERED,
    EventRecord,
    Interaction,
    ParticipationRecord,
)

_PATH_STATES = {
    "register": REGISTERED,
    "registered": REGISTERED,
    "attend": ATTENDED,
    "attended": ATTENDED,
    "cancel": CANCELLED,
    "cancelled": CANCELLED,
}


def parse_subscriber_state(value: str) -> str | None:
    """Path `subscriberState` -> participation state. Accepts the spec's verbs
    (register/attend/cancel) and the guide's nouns (REGISTERED/...), case-insensitively."""
    return _PATH_STATES.get(value.lower())


def record_interaction(record: ParticipationRecord, interaction: Interaction) -> bool:
    """Add an interaction unless the same (state, interactionDateTime) exists; True if added."""
    for existing in record.interactions:
        if existing.state == interaction.state and existing.occurred_at == interaction.occurred_at:
            return False
    record.interactions.append(interaction)
    return True


def latest(record: ParticipationRecord) -> Interaction | None:
    """The interaction that defines the current state."""
    best: Interaction | None = None
    for interaction in record.interactions:  # insertion order breaks ties: later wins
        if best is None or interaction.occurred_at >= best.occurred_at:
            best = interaction
    return best


def is_event_over(event: EventRecord, now_ms: int) -> bool:
    """Completed, or its end time has passed."""
    return event.completed or (event.end_ms is not None and event.end_ms <= now_ms)


def current_state(record: ParticipationRecord, event: EventRecord, now_ms: int) -> str:
    """REGISTERED | ATTENDED | CANCELLED | NO_SHOW (EMPTY when nothing was recorded)."""
    last = latest(record)
    if last is None:
        return "EMPTY"
    if (
        last.state == REGISTERED
        and is_event_over(event, now_ms)
        and not any(i.state == ATTENDED for i in record.interactions)
    ):
        return NO_SHOW
    return last.state


def attendance_seconds(record: ParticipationRecord) -> int | None:
    """Sum of leftAt - joinedAt over ATTENDED interactions that carry both (None if none do)."""
    total = 0
    seen = False
    for interaction in record.interactions:
        if interaction.state != ATTENDED:
            continue
        if interaction.joined_at is None or interaction.left_at is None:
            continue
        seen = True
        total += max(0, interaction.left_at - interaction.joined_at) // 1000
    return total if seen else None


@dataclass(frozen=True)
class Counters:
    """Per-event counts by current state."""

    registered: int = 0
    attended: int = 0
    cancelled: int = 0
    no_shows: int = 0

    def as_attendance_counters(self) -> dict[str, int]:
        """`AttendanceCounters` body."""
        return {
            "attended": self.attended,
            "registered": self.registered,
            "cancelled": self.cancelled,
            "noShows": self.no_shows,
        }

    def as_event_fields(self) -> dict[str, int]:
        """Counter fields of the event read models."""
        return {
            "registrants": self.registered,
            "attendees": self.attended,
            "cancellations": self.cancelled,
            "noShows": self.no_shows,
        }


def count(records: list[ParticipationRecord], event: EventRecord, now_ms: int) -> Counters:
    """Counters from each contact's current state."""
    tally = {REGISTERED: 0, ATTENDED: 0, CANCELLED: 0, NO_SHOW: 0}
    for record in records:
        state = current_state(record, event, now_ms)
        if state in tally:
            tally[state] += 1
    return Counters(tally[REGISTERED], tally[ATTENDED], tally[CANCELLED], tally[NO_SHOW])
