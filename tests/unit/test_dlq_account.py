"""`--account`: a dead letter's platform account from its header or its decoded value, and the
selection that counts what it cannot tell (undecodable values never match)."""

from __future__ import annotations

import pytest

from connector.config import Settings, TopicSettings
from connector.dlq import DeadLetter, Stage
from connector.dlq.account import AccountResolver, account_of_datum
from connector.dlq.envelope import H_ACCOUNT
from connector.dlq.filters import FilterError, RecordFilter, Verdict
from connector.dlq.inspect import ValueRenderer
from connector.dlq.operations import choose, select
from connector.dlq.progress import PartitionProgress
from connector.dlq.record import DeadLetterRecord
from connector.normalize.command import COMMAND_SCHEMA, Attendance, Command
from connector.sample import SampleSpec, generate
from connector.serde.catalog import ACTIVITY_SCHEMA, WEBINAR_SCHEMA, SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.record import SourceRecord
from connector.serde.topic import TopicFormat, build_codec

T0 = 1_767_261_600_000
SETTINGS = Settings(topics=TopicSettings(activity="act", webinars="webs", commands="cmds",
                                         commands_dlq="cmds.dlq"))
CATALOG = SchemaCatalog.from_directory()


def command_value(account: str) -> bytes:
    codec = build_codec(TopicFormat(Framing.SINGLE_OBJECT, COMMAND_SCHEMA), "cmds", CATALOG)
    command = Command("web-1", account, Attendance("REGISTERED", None, "a@example.com", T0))
    value: bytes = codec.encode(command.to_avro())
    return value


def platform_values(account: str) -> tuple[bytes, bytes]:
    """An activity and a webinar of `account`, raw-framed as the platform topics are."""
    sample = generate(SampleSpec(people_per_webinar=2, account_id=account))
    activity = build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "act", CATALOG)
    webinar = build_codec(TopicFormat(Framing.RAW, WEBINAR_SCHEMA), "webs", CATALOG)
    return activity.encode(sample.activities[0]), webinar.encode(sample.webinars[0])


def letter(value: bytes | None, *, source_topic: str | None = "cmds", dlq: str = "cmds.dlq",
           offset: int = 0, account: str | None = None,
           reason: str = "no-hubspot-install") -> DeadLetterRecord:
    source = SourceRecord(source_topic or "x", 0, 100 + offset, b"web-1", value)
    args = DeadLetter(source, Stage.SINK, reason, "m", "c", account=account).produce_args(
        dlq, T0)
    headers = args["headers"] if source_topic else [
        (n, v) for n, v in args["headers"] if n != "__connect.errors.topic"]
    return DeadLetterRecord(dlq, 0, offset, args["key"], args["value"], headers, T0 + offset)


@pytest.fixture
def resolver() -> AccountResolver:
    return AccountResolver(ValueRenderer.from_settings(SETTINGS), SETTINGS)


def test_the_account_header_is_written_only_when_known() -> None:
    with_account = letter(b"v", account="acct-9")
    assert with_account.header_map[H_ACCOUNT] == "acct-9"
    assert with_account.account_header == "acct-9"
    without = letter(b"v")
    assert H_ACCOUNT not in without.header_map and without.account_header is None


def test_account_of_datum_reads_commands_then_platform_records() -> None:
    assert account_of_datum({"externalAccountId": "a", "accountId": "b"}) == "a"
    assert account_of_datum({"accountId": "b"}) == "b"
    assert account_of_datum({"accountId": ""}) is None
    assert account_of_datum({"webinarId": "w"}) is None
    assert account_of_datum(["acct"]) is None


def test_resolver_decodes_commands_activity_and_webinars(resolver: AccountResolver) -> None:
    activity, webinar = platform_values("acct-p")
    assert resolver(letter(command_value("acct-c"))) == "acct-c"
    assert resolver(letter(activity, source_topic="act", dlq="act.dlq")) == "acct-p"
    assert resolver(letter(webinar, source_topic="webs", dlq="webs.dlq")) == "acct-p"
    # no __connect.errors.topic header: the source is the one the dlq is named after
    assert resolver(letter(command_value("acct-c"), source_topic=None)) == "acct-c"


def test_the_header_wins_over_the_value(resolver: AccountResolver) -> None:
    assert resolver(letter(command_value("acct-c"), account="acct-h")) == "acct-h"
    assert resolver(letter(b"\x00\xff", account="acct-h")) == "acct-h"  # undecodable, known


def test_undecodable_values_have_no_account(resolver: AccountResolver) -> None:
    assert resolver(letter(b"\x00\xff")) is None  # bad magic
    assert resolver(letter(b"")) is None
    assert resolver(letter(None)) is None  # a tombstone
    assert resolver(letter(command_value("a"), source_topic="elsewhere",
                           dlq="elsewhere.dlq")) is None  # no schema for that topic
    activity, _ = platform_values("acct-p")
    assert resolver(letter(activity, source_topic="cmds")) is None  # wrong schema


def test_account_filter_verdicts(resolver: AccountResolver) -> None:
    only_a = RecordFilter.parse(now_ms=T0 + 10, accounts=("acct-a",))
    a, b, bad = letter(command_value("acct-a")), letter(command_value("acct-b")), \
        letter(b"\x00\xff")
    assert only_a.verdict(a, resolver) is Verdict.MATCH
    assert only_a.verdict(b, resolver) is Verdict.NO_MATCH
    assert only_a.verdict(bad, resolver) is Verdict.NO_ACCOUNT
    assert not only_a.matches(bad, resolver)
    both = RecordFilter.parse(now_ms=T0 + 10, accounts=("acct-a", " acct-b "))
    assert both.accounts == frozenset({"acct-a", "acct-b"})
    assert both.matches(a, resolver) and both.matches(b, resolver)
    # the other criteria still apply, and decide first: a non-matching reason is NO_MATCH
    other_reason = RecordFilter.parse(now_ms=T0 + 10, accounts=("acct-a",),
                                      reasons=("event-not-found",))
    assert other_reason.verdict(bad, resolver) is Verdict.NO_MATCH
    assert other_reason.verdict(a, resolver) is Verdict.NO_MATCH
    with pytest.raises(ValueError, match="account_of"):
        only_a.matches(a)
    assert RecordFilter.parse(now_ms=T0).matches(bad)  # no --account: no decoding needed


@pytest.mark.parametrize("accounts", [("",), ("acct", "  ")])
def test_blank_accounts_are_refused(accounts: tuple[str, ...]) -> None:
    with pytest.raises(FilterError, match="--account: expected a platform account id"):
        RecordFilter.parse(now_ms=T0, accounts=accounts)


def test_select_and_choose_count_the_undecodable(resolver: AccountResolver) -> None:
    records = [letter(command_value("acct-a"), offset=0), letter(b"\x00", offset=1),
               letter(command_value("acct-b"), offset=2), letter(command_value("acct-a"), offset=3),
               letter(b"", offset=4)]
    only_a = RecordFilter.parse(now_ms=T0 + 10, accounts=("acct-a",))
    chosen, undecodable = select(records, only_a, resolver)
    assert [r.offset for r in chosen] == [0, 3] and undecodable == 2

    progress = {0: PartitionProgress(watermark=1)}  # offset 0 was redriven before
    picked = choose(records, progress, only_a, from_start=False, limit=None, account_of=resolver)
    assert [r.offset for r in picked.records] == [3]
    assert (picked.skipped_redriven, picked.undecodable) == (1, 2)
    again = choose(records, progress, only_a, from_start=True, limit=1, account_of=resolver)
    assert [r.offset for r in again.records] == [0] and again.skipped_redriven == 0
