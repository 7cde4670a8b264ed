"""Who a record is about, and whether it can be written to HubSpot at all.

A record that cannot be written is a `Rejection` value (reason + detail + the raw record) that
the runtime sends to the dead-letter topic; it never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from connector.serde.record import SourceRecord

DAY_MS = 86_400_000
#: Bounds for any activity, so that times derived from it (+ grace, + 1 ms for a correction)
#: stay far inside Avro's long.
EARLIEST_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
LATEST_MS = 7_258_118_400_000  # 2200-01-01T00:00:00Z

# Deliberately simple: one @, a dot in the domain, no spaces. HubSpot rejects worse; we only
# want to stop what can never be a contact before it costs a request.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class RejectReason(StrEnum):
    """Reasons a platform record goes to the dead-letter topic (values of the reason header)."""

    NO_CONTACT_IDENTIFIER = "no-contact-identifier"
    MALFORMED_EMAIL = "malformed-email"
    TIMESTAMP_OUT_OF_RANGE = "timestamp-out-of-range"
    UNKNOWN_ACTION = "unknown-action"
    ACCOUNT_MISMATCH = "account-mismatch"
    WEBINAR_STATE_EXPIRED = "webinar-state-expired"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record the normalizer will not turn into commands, and why."""

    reason: RejectReason
    detail: str
    source: SourceRecord


# Not frozen: one is made per record, and frozen costs more. Read-only. Its own __init__, which
# mypyc compiles (the one `dataclass` generates stays interpreted).
@dataclass(slots=True, init=False)
class Identity:
    """The HubSpot contact a record is about: by vid when known, else by normalized email."""

    key: str
    vid: int | None
    email: str | None

    def __init__(self, key: str, vid: int | None, email: str | None):
        self.key = key
        self.vid = vid
        self.email = email


def identify(participant: dict[str, Any]) -> Identity | tuple[RejectReason, str]:
    """The person's identity, or (reason, detail) when they cannot be written to HubSpot."""
    vid = participant.get("hubspotContactId")
    if vid is not None and vid > 0:
        return Identity(f"vid:{vid}", vid, None)
    raw = participant.get("email")
    email = (raw or "").strip().lower()
    if not email:
        return (RejectReason.NO_CONTACT_IDENTIFIER,
                "participant has neither a hubspotContactId nor an email")
    if not _EMAIL.match(email):
        return RejectReason.MALFORMED_EMAIL, f"email of {len(email)} characters is not valid"
    return Identity(f"email:{email}", None, email)


def contact_properties(profile: list[str | None]) -> dict[str, str]:
    """HubSpot contact properties for a contact HubSpot creates, from [first, last, company]
    (an empty profile: none). Unrolled: it runs for every command about a contact by email."""
    properties: dict[str, str] = {}
    if profile:
        first, last, company = profile
        if first and (first := first.strip()):
            properties["firstname"] = first
        if last and (last := last.strip()):
            properties["lastname"] = last
        if company and (company := company.strip()):
            properties["company"] = company
    return properties


@dataclass(frozen=True)
class TimeWindow:
    """How far from the webinar an activity may plausibly happen."""

    days_before_start: int = 365
    days_after_end: int = 30

    def check(self, occurred_at: int, webinar: dict[str, Any]) -> str | None:
        """None when plausible, else a detail for the rejection."""
        if not EARLIEST_MS <= occurred_at <= LATEST_MS:  # whatever the webinar says
            return f"occurredAt {occurred_at} is not between the years 2000 and 2200"
        start, end = _start_end(webinar)
        if start is not None and occurred_at < start - self.days_before_start * DAY_MS:
            return f"occurredAt {occurred_at} is over {self.days_before_start} days before start"
        if end is not None and occurred_at > end + self.days_after_end * DAY_MS:
            return f"occurredAt {occurred_at} is over {self.days_after_end} days after the end"
        return None

    def bounds(self, webinar: dict[str, Any]) -> tuple[int, int]:
        """(earliest, latest) occurredAt that `check` accepts for this webinar, both inclusive:
        the per-record test is then two comparisons on values computed once per webinar."""
        start, end = _start_end(webinar)
        low, high = EARLIEST_MS, LATEST_MS
        if start is not None:
            low = max(low, start - self.days_before_start * DAY_MS)
        if end is not None:
            high = min(high, end + self.days_after_end * DAY_MS)
        return low, high


@dataclass(frozen=True)
class NormalizeRules:
    """The tunable parts of the attendance semantics."""

    rejoin_grace_ms: int = 600_000
    ended_retention_ms: int = 72 * 3_600_000
    window: TimeWindow = field(default_factory=TimeWindow)


def ended_at(webinar: dict[str, Any] | None) -> int | None:
    """The webinar's actualEnd once it is ENDED (falls back to the scheduled end)."""
    if webinar is None or webinar.get("status") != "ENDED":
        return None
    end = webinar.get("actualEnd") or webinar.get("scheduledEnd")
    return int(end) if end is not None else None


def _start_end(webinar: dict[str, Any]) -> tuple[int | None, int | None]:
    start = webinar.get("scheduledStart") or webinar.get("actualStart")
    end = webinar.get("actualEnd") or webinar.get("scheduledEnd") or start
    return start, end
