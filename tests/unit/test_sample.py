"""The sample generator produces what the contract says the platform delivers."""

from __future__ import annotations

from collections import Counter

from connector.sample import SampleSpec, generate
from connector.serde.catalog import ACTIVITY_SCHEMA, WEBINAR_SCHEMA, SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.topic import TopicFormat, build_codec

SAMPLE = generate(SampleSpec(seed=3, webinars=2, people_per_webinar=300))


def test_same_seed_same_records() -> None:
    again = generate(SampleSpec(seed=3, webinars=2, people_per_webinar=300))
    assert again.publish_order() == SAMPLE.publish_order()
    assert generate(SampleSpec(seed=4)).publish_order() != SAMPLE.publish_order()


def test_every_record_is_valid_avro() -> None:
    catalog = SchemaCatalog.from_directory()
    activity = build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "a", catalog)
    webinar = build_codec(TopicFormat(Framing.RAW, WEBINAR_SCHEMA), "w", catalog)
    for kind, record in SAMPLE.publish_order():
        codec = webinar if kind == "webinar" else activity
        assert codec.decode(codec.encode(record)) == record


def test_the_awkward_cases_are_all_present() -> None:
    acts = [r for k, r in SAMPLE.publish_order() if k == "activity"]
    ids = Counter(a["activityId"] for a in acts)
    assert any(n > 1 for n in ids.values()), "duplicates"
    assert any(not a["participant"]["email"] and a["participant"]["hubspotContactId"] is None
               for a in acts), "guests without email"
    assert any(a["participant"]["hubspotContactId"] for a in acts), "known contacts"
    assert any(a["participant"]["email"] and a["participant"]["email"] !=
               a["participant"]["email"].strip().lower() for a in acts), "un-normalized emails"
    joins: Counter[str] = Counter()
    regs: dict[str, list[str]] = {}
    for a in acts:
        kind = a["action"][0].rsplit(".", 1)[1]
        pid = a["participant"]["participantId"]
        if kind == "Joined":
            joins[pid] += 1
        if kind in ("Registered", "RegistrationCancelled"):
            regs.setdefault(pid, []).append(kind)
    assert any(n > 1 for n in joins.values()), "reconnects"
    assert any(seq[-2:] == ["RegistrationCancelled", "Registered"] for seq in regs.values())
    devices = {a["action"][1].get("device") for a in acts if a["action"][0].endswith("Joined")}
    assert "mobile" in devices, "second devices"
    occurred = [a["occurredAt"] for a in acts]
    assert occurred != sorted(occurred), "late delivery"


def test_webinar_metadata_arrives_after_its_first_activity() -> None:
    order = SAMPLE.publish_order()
    first_webinar = next(i for i, (k, _) in enumerate(order) if k == "webinar")
    assert order[0][0] == "activity" and first_webinar > 0
    statuses = [r["status"] for k, r in order if k == "webinar" and r["webinarId"] ==
                order[first_webinar][1]["webinarId"]]
    assert statuses == ["SCHEDULED", "LIVE", "ENDED"]
