"""The attendance rules of the contract, one table row each, and delivery-order independence."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.normalize.command import Attendance, Command
from connector.normalize.normalizer import AttendanceNormalizer, Output
from connector.normalize.person import AttendanceOutcome, Participation
from connector.normalize.rules import NormalizeRules, RejectReason, contact_properties
from connector.runtime import changelog
from connector.sample import SampleSpec, generate
from connector.sample.oracle import expected_outcome, final_from_commands
from connector.serde.record import SourceRecord

NS = "webinar.platform.v1"
T0 = 1_767_261_600_000
MIN = 60_000
GRACE = 10 * MIN


def webinar(status: str = "LIVE", **overrides: Any) -> dict[str, Any]:
    base = {"webinarId": "w1", "accountId": "acct", "title": "T", "organizer": "O",
            "eventType": None, "description": None, "url": None, "scheduledStart": T0,
            "scheduledEnd": T0 + 60 * MIN, "status": status, "actualStart": T0,
            "actualEnd": T0 + 60 * MIN if status == "ENDED" else None, "updatedAt": T0,
            "customProperties": {}}
    return {**base, **overrides}


class Harness:
    """Feeds one normalizer and keeps everything it emitted."""

    def __init__(self, meta: dict[str, Any] | None = None, rules: NormalizeRules | None = None):
        self.table: dict[str, dict[str, Any]] = {"w1": meta} if meta else {}
        self.normalizer = AttendanceNormalizer(self.table.get, rules)
        self.commands: list[Command] = []
        self.rejections: list[Any] = []
        self._n = 0

    def _take(self, out: Output) -> Output:
        self.commands += out.commands
        self.rejections += out.rejections
        return out

    def act(self, kind: str, at: int, *, who: str = "ada@example.com", vid: int | None = None,
            session: str = "s1", activity_id: str | None = None, webinar_id: str = "w1",
            first: str | None = "Ada") -> Output:
        self._n += 1
        body: dict[str, Any] = {"Registered": {"source": None},
                                "RegistrationCancelled": {"reason": None},
                                "Joined": {"sessionId": session, "device": None},
                                "Left": {"sessionId": session, "reason": None}}[kind]
        datum = {"activityId": activity_id or f"a{self._n}", "webinarId": webinar_id,
                 "accountId": "acct", "occurredAt": at,
                 "participant": {"participantId": "p", "email": who, "firstName": first,
                                 "lastName": None, "company": None, "hubspotContactId": vid},
                 "action": (f"{NS}.{kind}", body)}
        source = SourceRecord("webinar.activity", 0, self._n, b"w1", b"raw", [])
        return self._take(self.normalizer.on_activity(datum, source))

    def meta(self, record: dict[str, Any]) -> Output:
        self.table[record["webinarId"]] = record
        return self._take(self.normalizer.on_webinar(record["webinarId"]))

    def advance(self, to: int) -> Output:
        return self._take(self.normalizer.advance(to))

    def attendance(self) -> list[Attendance]:
        return [c.body for c in self.commands if isinstance(c.body, Attendance)]

    def states(self) -> list[str]:
        return [a.state for a in self.attendance()]


def test_registration_emits_registered_with_its_time_and_contact_properties() -> None:
    h = Harness(webinar())
    h.act("Registered", T0 - 5 * MIN, who="  Ada@Example.COM ")
    [cmd] = h.attendance()
    assert (cmd.state, cmd.email, cmd.vid, cmd.interactionDateTime) == \
        ("REGISTERED", "ada@example.com", None, T0 - 5 * MIN)
    assert cmd.contactProperties == {"firstname": "Ada"}


def test_vid_identifies_the_person_when_set() -> None:
    h = Harness(webinar())
    h.act("Registered", T0, vid=4711, who="x@example.com")
    [cmd] = h.attendance()
    assert (cmd.vid, cmd.email, cmd.contactProperties) == (4711, None, {})


def test_duplicate_activity_changes_nothing() -> None:
    h = Harness(webinar())
    h.act("Registered", T0, activity_id="dup")
    h.act("Registered", T0, activity_id="dup")
    assert h.states() == ["REGISTERED"]


def test_a_second_registration_is_not_a_change() -> None:
    h = Harness(webinar())
    h.act("Registered", T0 - 9 * MIN)
    h.act("Registered", T0 - 8 * MIN)
    assert h.states() == ["REGISTERED"]


def test_cancel_then_reregister_follows_the_latest_occurred_at() -> None:
    h = Harness(webinar())
    h.act("Registered", T0 - 9 * MIN)
    h.act("RegistrationCancelled", T0 - 8 * MIN)
    h.act("Registered", T0 - 7 * MIN)
    assert h.states() == ["REGISTERED", "CANCELLED", "REGISTERED"]


def test_a_late_older_cancellation_does_not_override_a_newer_registration() -> None:
    h = Harness(webinar())
    h.act("Registered", T0 - 7 * MIN)
    h.act("RegistrationCancelled", T0 - 8 * MIN)
    assert h.states() == ["REGISTERED"]


def test_ties_on_occurred_at_are_broken_by_activity_id() -> None:
    h = Harness(webinar())
    h.act("RegistrationCancelled", T0, activity_id="b")
    h.act("Registered", T0, activity_id="a")
    assert h.states() == ["CANCELLED"]  # "b" > "a": the cancellation is the latest


def test_attended_waits_for_the_rejoin_grace_then_emits_final_times() -> None:
    h = Harness(webinar())
    h.act("Registered", T0 - MIN)
    h.act("Joined", T0)
    h.act("Left", T0 + 20 * MIN)
    assert h.states() == ["REGISTERED"]
    h.advance(T0 + 20 * MIN + GRACE - 1)
    assert h.states() == ["REGISTERED"]
    h.advance(T0 + 20 * MIN + GRACE)
    [_, attended] = h.attendance()
    assert (attended.state, attended.joinedAt, attended.leftAt, attended.attendedMillis) == \
        ("ATTENDED", T0, T0 + 20 * MIN, 20 * MIN)
    assert attended.interactionDateTime >= T0 - MIN


def test_an_open_connection_holds_attended_until_the_webinar_ends() -> None:
    h = Harness(webinar())
    h.act("Joined", T0, session="laptop")
    h.act("Joined", T0 + MIN, session="phone")
    h.act("Left", T0 + 5 * MIN, session="phone")
    h.advance(T0 + 50 * MIN)
    assert h.states() == []
    h.meta(webinar("ENDED"))
    assert h.states() == []  # the end counts once stream time reaches actualEnd
    h.advance(T0 + 60 * MIN)
    [attended] = h.attendance()
    assert (attended.joinedAt, attended.leftAt) == (T0, T0 + 60 * MIN)  # actualEnd closes it
    assert attended.attendedMillis == 60 * MIN  # union of overlapping connections


def test_a_webinar_reopened_after_its_end_closes_people_by_the_grace_again() -> None:
    h = Harness(webinar("ENDED"))  # actualEnd T0 + 60 min
    h.act("Joined", T0 + 40 * MIN, session="s1")
    h.act("Left", T0 + 42 * MIN, session="s1")  # deadline T0 + 52 min, then moved by s2:
    h.act("Joined", T0 + 45 * MIN, session="s2")
    h.act("Left", T0 + 55 * MIN, session="s2")  # min(Left + grace, actualEnd) = actualEnd
    h.meta(webinar("LIVE"))  # re-opened: the end no longer bounds the grace
    h.advance(T0 + 65 * MIN - 1)
    assert h.states() == []
    h.advance(T0 + 65 * MIN)
    [attended] = h.attendance()
    assert (attended.joinedAt, attended.leftAt, attended.attendedMillis) == \
        (T0 + 40 * MIN, T0 + 55 * MIN, 12 * MIN)


def test_a_rejoin_after_closing_yields_one_corrected_attended() -> None:
    h = Harness(webinar())
    h.act("Joined", T0)
    h.act("Left", T0 + 5 * MIN)
    h.advance(T0 + 5 * MIN + GRACE)
    h.act("Joined", T0 + 30 * MIN, session="s2")
    h.act("Left", T0 + 40 * MIN, session="s2")
    h.advance(T0 + 40 * MIN + GRACE)
    first, corrected = h.attendance()
    assert (first.joinedAt, first.leftAt) == (T0, T0 + 5 * MIN)
    assert (corrected.joinedAt, corrected.leftAt, corrected.attendedMillis) == \
        (T0, T0 + 40 * MIN, 15 * MIN)
    assert corrected.interactionDateTime > first.interactionDateTime


def test_attended_wins_over_cancellations_before_and_after() -> None:
    h = Harness(webinar())
    h.act("RegistrationCancelled", T0 - MIN)
    h.act("Joined", T0)
    h.act("Left", T0 + MIN)
    h.act("RegistrationCancelled", T0 + 2 * MIN)
    h.meta(webinar("ENDED"))
    h.act("Registered", T0 + 70 * MIN)
    assert h.states() == ["CANCELLED", "ATTENDED"]


def test_attended_comes_after_an_earlier_emitted_later_cancellation() -> None:
    # The cancellation (t=+3) arrives before the late Joined/Left: ATTENDED must still win
    # in HubSpot, which keeps a contact's latest interaction.
    h = Harness(webinar())
    h.act("RegistrationCancelled", T0 + 3 * MIN)
    h.act("Joined", T0)
    h.act("Left", T0 + MIN)
    h.meta(webinar("ENDED"))
    h.advance(T0 + 60 * MIN)
    cancelled, attended = h.attendance()
    assert attended.state == "ATTENDED"
    assert attended.interactionDateTime > cancelled.interactionDateTime


def test_left_before_joined_is_matched_by_session() -> None:
    h = Harness(webinar())
    h.act("Left", T0 + 9 * MIN)
    h.act("Joined", T0 + MIN)
    h.advance(T0 + 9 * MIN + GRACE)
    [attended] = h.attendance()
    assert (attended.joinedAt, attended.leftAt) == (T0 + MIN, T0 + 9 * MIN)


def test_a_late_left_after_the_end_corrects_left_at() -> None:
    h = Harness(webinar())
    h.act("Joined", T0)
    h.meta(webinar("ENDED"))
    h.advance(T0 + 60 * MIN)
    h.act("Left", T0 + 30 * MIN)
    first, corrected = h.attendance()
    assert first.leftAt == T0 + 60 * MIN and corrected.leftAt == T0 + 30 * MIN


def test_left_at_is_the_latest_left_even_for_a_session_that_joined_after_it() -> None:
    """Contract: leftAt = the latest Left (actualEnd for a connection that never left). A second
    device that joins after the webinar ended (its Left, at actualEnd, precedes its Joined) does
    not move leftAt to its Joined; it adds no attended time either. (bench/chaos.py --seed 5.)"""
    end = T0 + 60 * MIN
    h = Harness(webinar("ENDED"))
    h.act("Joined", end - 40 * 1000, session="web")
    h.act("Left", end, session="web")
    h.act("Left", end, session="mobile")
    h.act("Joined", end + 20 * 1000, session="mobile")
    h.act("Joined", T0, session="first")
    h.act("Left", T0 + 10 * MIN, session="first")
    h.advance(end + GRACE)
    final = h.attendance()[-1]
    assert (final.joinedAt, final.leftAt, final.attendedMillis) == (T0, end, 10 * MIN + 40 * 1000)


def test_a_connection_opened_after_the_end_without_a_left_ends_at_actual_end() -> None:
    end = T0 + 60 * MIN
    h = Harness(webinar("ENDED"))
    h.act("Joined", T0, session="web")
    h.act("Left", T0 + 5 * MIN, session="web")
    h.act("Joined", end + 30 * 1000, session="mobile")  # and never left
    h.advance(end + GRACE)
    final = h.attendance()[-1]
    assert (final.joinedAt, final.leftAt, final.attendedMillis) == (T0, end, 5 * MIN)


def test_replaying_an_ended_webinar_closes_each_person_once() -> None:
    h = Harness(webinar("ENDED"))  # the table already knows the end, as in a replay
    h.act("Registered", T0 - 9 * MIN)
    for n in range(3):
        h.act("Joined", T0 + n * 10 * MIN, session=f"s{n}")
        h.act("Left", T0 + n * 10 * MIN + 5 * MIN, session=f"s{n}")
    h.act("Joined", T0 + 50 * MIN, session="crashed")
    h.advance(T0 + 60 * MIN)
    assert h.states() == ["REGISTERED", "ATTENDED"]
    assert (h.attendance()[1].joinedAt, h.attendance()[1].leftAt) == (T0, T0 + 60 * MIN)


def test_activity_waits_for_its_webinar_metadata() -> None:
    h = Harness()
    h.act("Registered", T0 - MIN)
    assert h.commands == [] and h.normalizer.held["w1"]
    h.meta(webinar())
    assert h.states() == ["REGISTERED"] and not h.normalizer.held


@pytest.mark.parametrize(("who", "vid", "reason"), [
    (None, None, RejectReason.NO_CONTACT_IDENTIFIER),
    ("   ", None, RejectReason.NO_CONTACT_IDENTIFIER),
    ("not-an-email", None, RejectReason.MALFORMED_EMAIL),
    ("a@b", None, RejectReason.MALFORMED_EMAIL),
])
def test_unwritable_people_are_rejected_with_a_reason(who: str | None, vid: int | None,
                                                      reason: str) -> None:
    h = Harness(webinar())
    h.act("Joined", T0, who=who, vid=vid)  # type: ignore[arg-type]
    assert h.commands == [] and [r.reason for r in h.rejections] == [reason]
    assert h.rejections[0].source.value == b"raw"


def test_absurd_timestamps_are_rejected_and_do_not_move_stream_time() -> None:
    h = Harness(webinar())
    h.act("Joined", T0 + 400 * 86_400_000)
    h.act("Registered", T0 - 400 * 86_400_000)
    assert [r.reason for r in h.rejections] == [RejectReason.TIMESTAMP_OUT_OF_RANGE] * 2
    assert h.normalizer.stream_time == 0


def test_timestamps_outside_any_plausible_range_are_rejected_even_without_webinar_times() -> None:
    h = Harness(webinar(scheduledStart=None, scheduledEnd=None, actualStart=None))
    h.act("Joined", 2**63 - 1)
    h.act("Joined", -5)
    h.act("Joined", T0)
    assert [r.reason for r in h.rejections] == [RejectReason.TIMESTAMP_OUT_OF_RANGE] * 2


def test_state_of_ended_webinars_expires_and_later_records_are_rejected() -> None:
    rules = NormalizeRules(ended_retention_ms=60 * MIN)
    h = Harness(webinar("ENDED"), rules)
    h.act("Registered", T0 - MIN)
    h.advance(T0 + 121 * MIN + 1)
    assert h.normalizer.people == {}
    h.act("Registered", T0)
    assert [r.reason for r in h.rejections] == [RejectReason.WEBINAR_STATE_EXPIRED]


def test_state_survives_a_changelog_round_trip() -> None:
    h = Harness(webinar())
    h.act("Registered", T0 - MIN)
    h.act("Joined", T0)
    h.act("Left", T0 + 5 * MIN)
    changes = list(h.normalizer.drain_changes())
    restored = AttendanceNormalizer(h.table.get)
    for key, value in changes:
        restored.restore(key, value)
    assert restored.after_restore().commands == []
    out = restored.advance(T0 + 5 * MIN + GRACE)
    assert [c.body.state for c in out.commands] == ["ATTENDED"]  # type: ignore[union-attr]
    assert h.advance(T0 + 5 * MIN + GRACE).commands == out.commands


def test_an_open_connection_still_closes_at_the_end_after_a_restore() -> None:
    h = Harness(webinar())
    h.act("Joined", T0)
    h.meta(webinar("ENDED"))  # known, but stream time has not reached actualEnd yet
    restored = AttendanceNormalizer(h.table.get)
    for key, value in h.normalizer.drain_changes():
        restored.restore(key, value)
    assert restored.after_restore().commands == []
    [command] = restored.advance(T0 + 60 * MIN).commands
    assert command.body.state == "ATTENDED"  # type: ignore[union-attr]


def test_held_records_survive_a_changelog_round_trip() -> None:
    h = Harness()
    h.act("Registered", T0 - MIN)
    restored = AttendanceNormalizer(h.table.get)
    for key, value in h.normalizer.drain_changes():
        restored.restore(key, value)
    h.table["w1"] = webinar()
    assert [c.body.state for c in restored.on_webinar("w1").commands] == ["REGISTERED"]  # type: ignore[union-attr]


# -- delivery order does not matter ---------------------------------------------------------

SAMPLE = generate(SampleSpec(seed=11, people_per_webinar=60, late_ratio=0.0,
                             duplicate_ratio=0.0))
ORDERED = [r for k, r in SAMPLE.publish_order() if k == "activity"]
FINAL_WEBINARS = {w["webinarId"]: w for w in SAMPLE.webinars if w["status"] == "ENDED"}


def run(activities: list[dict[str, Any]], metadata_after: int) -> list[Command]:
    """Feed activities; metadata (LIVE) arrives after `metadata_after` of them, ENDED last."""
    table: dict[str, dict[str, Any]] = {}
    normalizer = AttendanceNormalizer(table.get)
    commands: list[Command] = []
    live = {w["webinarId"]: w for w in SAMPLE.webinars if w["status"] == "LIVE"}
    for i, datum in enumerate(activities):
        if i == metadata_after:
            for webinar_id, record in live.items():
                table[webinar_id] = record
                commands += normalizer.on_webinar(webinar_id).commands
        source = SourceRecord("webinar.activity", 0, i, None, b"", [])
        commands += normalizer.on_activity(datum, source).commands
    for webinar_id, record in {**live, **FINAL_WEBINARS}.items():
        table[webinar_id] = record
        commands += normalizer.on_webinar(webinar_id).commands
    return commands + normalizer.advance(2**62).commands  # idle punctuation at the end


def test_in_order_delivery_matches_the_oracle() -> None:
    assert final_from_commands(run(ORDERED, 0)) == expected_outcome(ORDERED, FINAL_WEBINARS)


def test_a_sample_with_a_device_joining_after_the_end_matches_the_oracle() -> None:
    """Seed 8 has a second device that joins after its webinar ended (its Left, capped at
    actualEnd, comes before its Joined), as seed 5 of the long chaos run has four."""
    sample = generate(SampleSpec(seed=8, webinars=2, people_per_webinar=200))
    activities = [r for k, r in sample.publish_order() if k == "activity"]
    final = {w["webinarId"]: w for w in sample.webinars if w["status"] == "ENDED"}
    normalizer = AttendanceNormalizer(final.get)  # the table knows the end, as in chaos runs
    commands: list[Command] = []
    for i, datum in enumerate(activities):
        source = SourceRecord("webinar.activity", 0, i, None, b"", [])
        commands += normalizer.on_activity(datum, source).commands
    commands += normalizer.advance(2**62).commands
    assert final_from_commands(commands) == expected_outcome(activities, final)


def _allowed_reorder(seed: int, max_late_ms: int, dup_ratio: float) -> list[dict[str, Any]]:
    """Bounded lateness (each record up to max_late_ms late) plus re-sent duplicates."""
    rng = random.Random(seed)
    delayed = []
    for datum in ORDERED:
        delayed.append((datum["occurredAt"] + rng.randint(0, max_late_ms), rng.random(), datum))
        if rng.random() < dup_ratio:
            delayed.append((datum["occurredAt"] + rng.randint(0, max_late_ms), rng.random(),
                            datum))
    return [d for _, _, d in sorted(delayed, key=lambda x: (x[0], x[1]))]


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), late_minutes=st.integers(0, 5),
       dup_ratio=st.floats(0, 0.3), metadata_after=st.integers(0, len(ORDERED)))
def test_any_allowed_delivery_order_gives_the_same_final_state(
        seed: int, late_minutes: int, dup_ratio: float, metadata_after: int) -> None:
    shuffled = _allowed_reorder(seed, late_minutes * MIN, dup_ratio)
    expected = final_from_commands(run(ORDERED, 0))
    assert final_from_commands(run(shuffled, metadata_after)) == expected


def test_no_command_repeats_an_unchanged_state() -> None:
    commands = run(_allowed_reorder(5, 3 * MIN, 0.3), 10)
    last: dict[tuple[str, Any, Any], Any] = {}
    for command in commands:
        body = command.body
        assert isinstance(body, Attendance)
        key = (command.externalEventId, body.vid, body.email)
        effect = (body.state, body.joinedAt, body.leftAt)
        assert last.get(key) != effect
        last[key] = effect


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 8_000_000_000_000),
       st.none() | st.integers(0, 8_000_000_000_000), st.none() | st.integers(0, 8_000_000_000_000),
       st.none() | st.integers(0, 8_000_000_000_000), st.none() | st.integers(0, 8_000_000_000_000))
def test_time_window_bounds_accept_exactly_what_check_accepts(
        at: int, scheduled_start: int | None, actual_start: int | None,
        scheduled_end: int | None, actual_end: int | None) -> None:
    from connector.normalize.rules import TimeWindow

    window = TimeWindow()
    meta = webinar(scheduledStart=scheduled_start, actualStart=actual_start,
                   scheduledEnd=scheduled_end, actualEnd=actual_end)
    low, high = window.bounds(meta)
    assert (low <= at <= high) == (window.check(at, meta) is None)


def test_a_webinar_changed_in_the_table_is_judged_by_its_new_times() -> None:
    """The normalizer remembers per-webinar facts (window, end) by the table's dict: a new
    version of the webinar (a new dict) is seen at once, even before on_webinar is called."""
    h = Harness(webinar())
    h.act("Registered", T0)
    h.table["w1"] = webinar(scheduledStart=T0 + 400 * 24 * 60 * MIN)
    h.act("Registered", T0 + MIN, who="bob@example.com")
    assert [r.reason for r in h.rejections] == [RejectReason.TIMESTAMP_OUT_OF_RANGE]


def test_person_state_round_trips_through_the_changelog_encoding() -> None:
    person = Participation(None, "ada@example.com", ["Ada", None, "AE"], (T0, "a1"), "REGISTERED",
                    (T0 - MIN, "a0"), {"s1": [T0, T0 + MIN], "s2": [T0 + 2 * MIN, None]},
                    AttendanceOutcome("ATTENDED", T0 + MIN, T0, T0 + MIN, MIN))
    encoded = changelog.encode(person.to_state())
    assert encoded is not None
    assert Participation.from_state(orjson.loads(encoded)) == person


def test_person_state_written_as_a_dict_by_earlier_versions_still_restores() -> None:
    earlier = {"v": 42, "e": None, "p": ["Ada", "Lovelace", None], "ps": [T0, "a1"],
               "r": "CANCELLED", "rs": [T0, "a1"], "s": {"s1": [T0, None]},
               "o": ["CANCELLED", T0, None, None, None]}
    assert Participation.from_state(earlier) == Participation(
        42, None, ["Ada", "Lovelace", None], (T0, "a1"), "CANCELLED", (T0, "a1"),
        {"s1": [T0, None]}, AttendanceOutcome("CANCELLED", T0))


@pytest.mark.parametrize(("profile", "expected"), [
    ([], {}),
    ([None, None, None], {}),
    (["  Ada ", "Lovelace", "  "], {"firstname": "Ada", "lastname": "Lovelace"}),
    (["", " King ", "Engines Ltd"], {"lastname": "King", "company": "Engines Ltd"}),
    (["Ada", None, "\tACME\n"], {"firstname": "Ada", "company": "ACME"}),
])
def test_contact_properties_are_the_stripped_non_blank_names(
        profile: list[str | None], expected: dict[str, str]) -> None:
    assert contact_properties(profile) == expected
