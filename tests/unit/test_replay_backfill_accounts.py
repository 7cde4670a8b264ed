"""`replay backfill --account`: the plan names the accounts and the extra temporary topic the
sink reads; the report says what was left out. (The run itself: tests/integration.)"""

from __future__ import annotations

import pytest

from connector.config import Settings
from connector.dlq.envelope import (
    H_BACKFILL,
    H_OFFSET,
    H_ORIGIN_OFFSET,
    H_PARTITION,
    H_REASON,
    H_TOPIC,
    from_backfill,
    header_map,
)
from connector.dlq.filters import FilterError, RecordFilter
from connector.dlq.record import DeadLetterRecord
from connector.replay.backfill_plan import BackfillPlan, BackfillReport, Names

T0 = 1_767_261_600_000
SETTINGS = Settings()


def plan(accounts: tuple[str, ...]) -> BackfillPlan:
    names = Names.for_id(SETTINGS, "abc")
    return BackfillPlan(T0, T0 + 3_600_000, ("activity", "webinars"), names,
                        {0: (10, 25)}, {0: (3, 4)}, {0: 0}, {0: 0}, accounts)


def test_the_sink_reads_the_planned_commands_topic_deleted_with_the_others() -> None:
    names = plan(("acct-a",)).names
    assert names.planned == f"{SETTINGS.topics.commands}.backfill-abc-planned"
    assert names.planned in names.topics()
    assert all(".backfill-abc" in t for t in names.topics())


def test_dry_run_names_the_accounts() -> None:
    filtered = plan(("acct-a", "acct-b"))
    text = "\n".join(filtered.describe(SETTINGS))
    assert "accounts: acct-a, acct-b (every record of the range is normalized" in text
    assert f"{SETTINGS.topics.commands}.backfill-abc-planned" in text
    assert filtered.as_json()["accounts"] == ["acct-a", "acct-b"]
    assert filtered.as_json()["records"] == 16
    assert "accounts:" not in "\n".join(plan(()).describe(SETTINGS))
    assert plan(()).as_json()["accounts"] == []


def test_report_says_what_other_accounts_did_not_get() -> None:
    report = BackfillReport(copied=16, commands=7, other_accounts=12, undecodable=1)
    lines = report.lines()
    assert lines[0].startswith("re-ran 16 record(s)") and "sent 7 command(s)" in lines[0]
    assert "left out 12 command(s) of other accounts" in lines
    assert "1 command(s) did not decode and were not sent (their account is unknown)" in lines
    assert not [line for line in BackfillReport(commands=7).lines() if "left out" in line]


def test_a_backfills_dead_letter_names_the_original_record_and_the_backfill() -> None:
    copied = [("traceparent", b"00-x"), (H_TOPIC, b"webinar.activity.backfill-abc"),
              (H_PARTITION, b"2"), (H_OFFSET, b"7"), (H_ORIGIN_OFFSET, b"1042"),
              (H_REASON, b"no-contact-identifier")]
    headers = header_map(from_backfill(copied, backfill_id="abc", topic="webinar.activity"))
    assert headers[H_TOPIC] == "webinar.activity"  # not the deleted copy
    assert (headers[H_PARTITION], headers[H_OFFSET]) == ("2", "1042")  # the original record
    assert headers[H_BACKFILL] == "abc" and H_ORIGIN_OFFSET not in headers
    assert headers["traceparent"] == "00-x" and headers[H_REASON] == "no-contact-identifier"


def test_dlq_selects_a_backfills_dead_letters_by_its_id() -> None:
    def letter(*headers: tuple[str, bytes]) -> DeadLetterRecord:
        return DeadLetterRecord("webinar.activity.dlq", 0, 0, None, None, list(headers))

    ours, live = letter((H_BACKFILL, b"abc")), letter((H_REASON, b"no-contact-identifier"))
    selection = RecordFilter.parse(now_ms=T0, backfills=("abc",))
    assert selection.matches(ours) and not selection.matches(live)
    assert not RecordFilter.parse(now_ms=T0, backfills=("other",)).matches(ours)
    with pytest.raises(FilterError, match="--backfill"):
        RecordFilter.parse(now_ms=T0, backfills=(" ",))
