"""A seeded generator of realistic platform traffic, for produce-sample, the demo, tests and bench.

It plays the platform: people register, cancel and re-register, join and leave several times
(reconnects, a second device), some never leave (crashed client), guests join without email, and
delivery is at least once and a little late. Everything is a pure function of the spec (seeded).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

NS = "webinar.platform.v1"
MINUTE_MS = 60_000


@dataclass(frozen=True)
class SampleSpec:
    """What to generate. Ratios are per person; times are epoch milliseconds."""

    seed: int = 7
    webinars: int = 1
    people_per_webinar: int = 200
    start_ms: int = 1_767_261_600_000  # 2026-01-01T10:00:00Z
    duration_minutes: int = 60
    account_id: str = "acct-1"
    attend_ratio: float = 0.6
    cancel_ratio: float = 0.15
    reregister_ratio: float = 0.3
    walk_in_ratio: float = 0.05
    guest_without_email_ratio: float = 0.03
    known_contact_ratio: float = 0.1
    #: HubSpot contact ids the platform already matched people to (e.g. contacts created in the
    #: sandbox first); empty: made-up ids 100000 + n.
    contact_ids: tuple[int, ...] = ()
    reconnect_ratio: float = 0.3
    second_device_ratio: float = 0.1
    missing_left_ratio: float = 0.03
    duplicate_ratio: float = 0.03
    late_ratio: float = 0.05
    max_late_ms: int = 3 * MINUTE_MS


@dataclass
class Sample:
    """Generated traffic: every webinar version and every activity, each in publishing order."""

    webinars: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)

    def publish_order(self) -> list[tuple[str, dict[str, Any]]]:
        """("webinar" | "activity", record) in the order the platform publishes them.

        A webinar's first description is published after its first activities (the contract
        allows metadata to arrive late); later versions follow their own updatedAt.
        """
        out: list[tuple[int, int, str, dict[str, Any]]] = []
        for seq, activity in enumerate(self.activities):
            out.append((activity["_publishedAt"], seq, "activity", activity))
        for seq, webinar in enumerate(self.webinars):
            out.append((webinar["updatedAt"], seq, "webinar", webinar))
        out.sort(key=lambda item: (item[0], item[2] == "activity", item[1]))
        return [(kind, _public(record)) for _t, _s, kind, record in out]


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_")}


@dataclass
class _Person:
    participant_id: str
    email: str | None
    first_name: str | None
    last_name: str | None
    company: str | None
    contact_id: int | None


FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Linus"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
        "Perlman", "Torvalds"]
COMPANIES = ["Acme", "Initech", "Globex", "Umbrella", None]


class _WebinarWriter:
    """Generates one webinar's records with a private RNG stream."""

    def __init__(self, spec: SampleSpec, index: int, rng: random.Random):
        self.spec, self.rng = spec, rng
        self.webinar_id = f"web-{spec.seed}-{index}"
        self.start = spec.start_ms + index * 7 * MINUTE_MS
        self.end = self.start + spec.duration_minutes * MINUTE_MS
        self.activities: list[dict[str, Any]] = []
        self._seq = 0

    def person(self, n: int, *, guest: bool) -> _Person:
        rng = self.rng
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = None if guest else f"{first}.{last}.{self.webinar_id}.{n}@example.com"
        if email and rng.random() < 0.2:  # platforms pass emails through as typed
            email = f"  {email.upper()} "
        contact_id = None
        if not guest and rng.random() < self.spec.known_contact_ratio:
            ids = self.spec.contact_ids
            contact_id = ids[n % len(ids)] if ids else 100_000 + n
        return _Person(f"{self.webinar_id}-p{n}", email, first, last,
                       rng.choice(COMPANIES), contact_id)

    def emit(self, person: _Person, at: int, name: str, body: dict[str, Any]) -> None:
        self._seq += 1
        self.activities.append({
            "activityId": f"{self.webinar_id}-a{self._seq}",
            "webinarId": self.webinar_id,
            "accountId": self.spec.account_id,
            "occurredAt": at,
            "participant": {
                "participantId": person.participant_id, "email": person.email,
                "firstName": person.first_name, "lastName": person.last_name,
                "company": person.company, "hubspotContactId": person.contact_id,
            },
            "action": (f"{NS}.{name}", body),
        })

    def registrations(self, person: _Person) -> None:
        rng, spec = self.rng, self.spec
        at = self.start - rng.randint(60, 14 * 24 * 60) * MINUTE_MS
        self.emit(person, at, "Registered", {"source": rng.choice(["form", "campaign", None])})
        if rng.random() < spec.cancel_ratio:
            at += rng.randint(1, 600) * MINUTE_MS // 10
            at = min(at, self.start - MINUTE_MS)
            self.emit(person, at, "RegistrationCancelled", {"reason": "busy"})
            if rng.random() < spec.reregister_ratio:
                self.emit(person, min(at + MINUTE_MS, self.start - 1), "Registered",
                          {"source": "reminder-email"})

    def sessions(self, person: _Person) -> None:
        rng, spec = self.rng, self.spec
        joined = self.start + rng.randint(-5, spec.duration_minutes // 2) * MINUTE_MS
        count = 1 + (rng.randint(1, 3) if rng.random() < spec.reconnect_ratio else 0)
        for s in range(count):
            left = min(joined + rng.randint(1, 20) * MINUTE_MS + rng.randint(0, 59_999), self.end)
            self._session(person, s, joined, left)
            if rng.random() < spec.second_device_ratio:  # phone while the laptop stays on
                self._session(person, s + 100, joined + MINUTE_MS,
                              min(left + 2 * MINUTE_MS, self.end), device="mobile")
            joined = left + rng.randint(5, 120) * 1000
            if joined >= self.end:
                break

    def _session(self, person: _Person, n: int, joined: int, left: int,
                 device: str = "web") -> None:
        session_id = f"{person.participant_id}-s{n}"
        self.emit(person, joined, "Joined", {"sessionId": session_id, "device": device})
        if self.rng.random() >= self.spec.missing_left_ratio:  # else the client crashed
            self.emit(person, left, "Left", {"sessionId": session_id, "reason": None})

    def webinar_versions(self) -> list[dict[str, Any]]:
        base = {
            "webinarId": self.webinar_id, "accountId": self.spec.account_id,
            "title": f"Kafka to HubSpot, part {self.webinar_id.rsplit('-', 1)[-1]}",
            "organizer": "Webinar Team", "eventType": "WEBINAR",
            "description": "A synthetic webinar from connector produce-sample.",
            "url": f"https://webinars.example.com/{self.webinar_id}",
            "scheduledStart": self.start, "scheduledEnd": self.end,
            "actualStart": None, "actualEnd": None,
            "customProperties": {"track": "integration"},
        }
        first_activity = min((a["_publishedAt"] for a in self.activities), default=self.start)
        return [
            {**base, "status": "SCHEDULED", "updatedAt": first_activity + 1},
            {**base, "status": "LIVE", "actualStart": self.start, "updatedAt": self.start},
            {**base, "status": "ENDED", "actualStart": self.start, "actualEnd": self.end,
             "updatedAt": self.end + 1},
        ]


def _deliver(activities: list[dict[str, Any]], spec: SampleSpec,
             rng: random.Random) -> list[dict[str, Any]]:
    """At-least-once, slightly late delivery: publish times, duplicates, then publishing order."""
    delivered = []
    for activity in activities:
        late = rng.randint(1, spec.max_late_ms) if rng.random() < spec.late_ratio else 0
        delivered.append({**activity, "_publishedAt": activity["occurredAt"] + late})
        if rng.random() < spec.duplicate_ratio:
            delivered.append({**activity, "_publishedAt": activity["occurredAt"]
                              + rng.randint(1, spec.max_late_ms)})
    delivered.sort(key=lambda a: a["_publishedAt"])
    return delivered


def generate(spec: SampleSpec = SampleSpec()) -> Sample:
    """All records of `spec.webinars` webinars, deterministic for `spec.seed`."""
    rng = random.Random(spec.seed)
    sample = Sample()
    for index in range(spec.webinars):
        writer = _WebinarWriter(spec, index, random.Random(rng.getrandbits(64)))
        for n in range(spec.people_per_webinar):
            walk_in = rng.random() < spec.walk_in_ratio
            guest = walk_in and rng.random() < spec.guest_without_email_ratio / spec.walk_in_ratio
            person = writer.person(n, guest=guest)
            if not walk_in:
                writer.registrations(person)
            if walk_in or rng.random() < spec.attend_ratio:
                writer.sessions(person)
        writer.activities = _deliver(writer.activities, spec, writer.rng)
        sample.activities.extend(writer.activities)
        sample.webinars.extend(writer.webinar_versions())
    sample.activities.sort(key=lambda a: a["_publishedAt"])
    return sample
