"""`connector dlq list / show / redrive` on the real broker, through click's CliRunner.

Dead letters are made the way the workers make them (DeadLetter(...).produce_args) and produced
into `<source>.dlq` and the configured commands dead-letter topic; the commands run with CONNECTOR_*
variables naming this test's topics.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner, Result
from confluent_kafka.admin import AdminClient, NewTopic

from connector.cli import main
from connector.cli.dlq import dlq_group
from connector.dlq import DeadLetter, Stage, header_map
from connector.dlq.history import read_history
from connector.kafka.reader import read_all
from connector.normalize.command import COMMAND_SCHEMA, Attendance, Command
from connector.sample import SampleSpec, generate
from connector.serde.catalog import ACTIVITY_SCHEMA, SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.record import Headers, SourceRecord
from connector.serde.topic import TopicFormat, build_codec

pytestmark = pytest.mark.integration

if "dlq" not in main.commands:  # registered in connector/cli/commands.py eventually
    main.add_command(dlq_group)

CATALOG = SchemaCatalog.from_directory()
HOUR_MS = 3_600_000


@dataclass
class Topics:
    bootstrap: str
    activity: str
    commands: str
    commands_dlq: str
    activity_dlq: str
    env: dict[str, str]


@pytest.fixture
def topics(topic_factory: Any, kafka_admin: AdminClient, kafka_bootstrap: str
           ) -> Iterator[Topics]:
    """Platform/commands topics from topic_factory, and `<activity>.dlq` created here."""
    activity = topic_factory("activity", 2)
    commands = topic_factory("commands", 2)
    commands_dlq = topic_factory("commands-dlq", 1)
    webinars = f"webinars-{uuid.uuid4().hex[:8]}"  # never created: its .dlq must not be listed
    with created_topic(kafka_admin, f"{activity}.dlq", 2) as activity_dlq:
        env = {
            "CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
            "CONNECTOR_TOPICS__ACTIVITY": activity,
            "CONNECTOR_TOPICS__WEBINARS": webinars,
            "CONNECTOR_TOPICS__COMMANDS": commands,
            "CONNECTOR_TOPICS__COMMANDS_DLQ": commands_dlq,
        }
        yield Topics(kafka_bootstrap, activity, commands, commands_dlq, activity_dlq, env)


@contextlib.contextmanager
def created_topic(admin: AdminClient, name: str, partitions: int) -> Iterator[str]:
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    deadline = time.monotonic() + 30
    while True:
        meta = admin.list_topics(topic=name, timeout=30).topics.get(name)
        if meta is not None and meta.error is None and len(meta.partitions) == partitions and \
                all(p.leader >= 0 for p in meta.partitions.values()):
            break
        assert time.monotonic() < deadline, f"{name} has no leaders"
        time.sleep(0.05)
    try:
        yield name
    finally:
        for future in admin.delete_topics([name]).values():
            with contextlib.suppress(Exception):
                future.result(30)


def cli(t: Topics, *args: str) -> Result:
    result = CliRunner().invoke(main, ["dlq", *args], env=t.env)
    assert "Traceback" not in result.output
    return result


def ok_json(t: Topics, *args: str) -> Any:
    result = cli(t, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def json_lines(t: Topics, *args: str) -> list[dict[str, Any]]:
    result = cli(t, *args, "--json")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def now_ms() -> int:
    return int(time.time() * 1000)


# --------------------------------------------------------------------------- dead letters


def command_value(command: Command) -> bytes:
    codec = build_codec(TopicFormat(Framing.SINGLE_OBJECT, COMMAND_SCHEMA), "c", CATALOG)
    value: bytes = codec.encode(command.to_avro())
    return value


def attendance(webinar: str, email: str) -> Command:
    return Command(webinar, "acct-1", Attendance("REGISTERED", None, email, 1_767_261_600_000))


def activity_value() -> tuple[bytes, str]:
    record = generate(SampleSpec(people_per_webinar=2)).activities[0]
    codec = build_codec(TopicFormat(Framing.RAW, ACTIVITY_SCHEMA), "a", CATALOG)
    return codec.encode(record), record["webinarId"]


def put(producer: Any, topic: str, letter: DeadLetter, timestamp_ms: int | None = None,
        partition: int | None = None) -> None:
    args = letter.produce_args(topic, timestamp_ms or now_ms())
    if timestamp_ms is not None:
        args["timestamp"] = timestamp_ms
    if partition is not None:
        args["partition"] = partition
    producer.produce(**args)


def sink_letter(source_topic: str, partition: int, offset: int, command: Command, *,
                reason: str, status: int, exception: str,
                headers: Headers | None = None) -> DeadLetter:
    source = SourceRecord(source_topic, partition, offset, command.key, command_value(command),
                          headers if headers is not None else [("traceparent", b"00-trace")])
    return DeadLetter(source, Stage.SINK, reason, f"HTTP {status}", "connector.sink.Applier",
                      exception, status, "OBJECT_NOT_FOUND" if status == 404 else None,
                      "corr-1", 3, 1, 2)


NOT_FOUND = {"reason": "event-not-found", "status": 404,
             "exception": "connector.hubspot.errors.NotFoundError"}
REJECTED = {"reason": "hubspot-rejected", "status": 400,
            "exception": "connector.hubspot.errors.ValidationError"}
LIMITED = {"reason": "retry-budget-exhausted", "status": 429,
           "exception": "connector.hubspot.errors.RateLimitedError"}


def fill(t: Topics, producer: Any) -> dict[str, Any]:
    """Three dead letters per topic, with timestamps 3h, 2h and 1h ago."""
    now = now_ms()
    valid, valid_webinar = activity_value()
    platform = [
        DeadLetter(SourceRecord(t.activity, 1, 40, b"web-bad", b"\xc3\xff\x00"), Stage.DECODE,
                   "malformed-avro", "cannot read", "connector.serde.TopicDecoder",
                   "EOFError"),
        DeadLetter(SourceRecord(t.activity, 0, 41, valid_webinar.encode(), valid,
                                [("origin", b"platform")]), Stage.NORMALIZE,
                   "no-contact-identifier", "no email", "connector.normalize.Normalizer"),
        DeadLetter(SourceRecord(t.activity, 1, 42, b"web-bad", b""), Stage.DECODE,
                   "empty-value", "0 bytes", "connector.serde.TopicDecoder"),
    ]
    for n, letter in enumerate(platform):
        put(producer, t.activity_dlq, letter, now - (3 - n) * HOUR_MS, letter.source.partition)
    commands = [
        (attendance("web-1", "a@example.com"), 1, 5, NOT_FOUND),
        (attendance("web-2", "b@example.com"), 0, 6, LIMITED),
        (attendance("web-1", "c@example.com"), 1, 7, REJECTED),
    ]
    for n, (command, partition, offset, error) in enumerate(commands):
        put(producer, t.commands_dlq, sink_letter(t.commands, partition, offset, command,
                                                  **error), now - (3 - n) * HOUR_MS)
    assert producer.flush(30) == 0
    return {"valid_webinar": valid_webinar, "commands": [c for c, *_ in commands]}


# --------------------------------------------------------------------------- list


def test_list_counts_dead_letters_by_reason_status_and_exception(
        topics: Topics, producer_factory: Any) -> None:
    fill(topics, producer_factory())
    listed = {s["topic"]: s for s in ok_json(topics, "list")["topics"]}
    assert f"{topics.env['CONNECTOR_TOPICS__WEBINARS']}.dlq" not in listed
    platform, sink = listed[topics.activity_dlq], listed[topics.commands_dlq]
    assert platform["records"] == 3 and platform["pending"] == 3
    assert platform["sources"] == {topics.activity: 3}
    assert platform["by_reason"] == {"empty-value": 1, "malformed-avro": 1,
                                     "no-contact-identifier": 1}
    assert platform["by_status"] == {"(none)": 3}
    assert platform["by_exception"] == {"(none)": 2, "EOFError": 1}
    assert sink["by_reason"] == {"event-not-found": 1, "hubspot-rejected": 1,
                                 "retry-budget-exhausted": 1}
    assert sink["by_status"] == {"400": 1, "404": 1, "429": 1}
    assert set(sink["by_exception"]) == {e["exception"] for e in (NOT_FOUND, REJECTED, LIMITED)}

    text = cli(topics, "list")
    assert text.exit_code == 0
    assert f"{topics.commands_dlq}: 3 record(s), 3 pending, from {topics.commands}" in text.stdout
    assert "status:    400 1, 404 1, 429 1" in text.stdout


# --------------------------------------------------------------------------- show


def test_show_decodes_values_and_prints_every_header(topics: Topics,
                                                     producer_factory: Any) -> None:
    made = fill(topics, producer_factory())
    records = json_lines(topics, "show", topics.activity_dlq)
    assert [(r["partition"], r["reason"]) for r in records] == [
        (0, "no-contact-identifier"), (1, "malformed-avro"), (1, "empty-value")]
    decoded, malformed, empty = records
    assert decoded["key"] == made["valid_webinar"]
    assert decoded["value"]["framing"] == "raw"
    assert decoded["value"]["schema"] == ACTIVITY_SCHEMA
    assert decoded["value"]["decoded"]["webinarId"] == made["valid_webinar"]
    assert decoded["source"] == {"topic": topics.activity, "partition": 0, "offset": 41}
    headers = {h["name"]: h["value"] for h in decoded["headers"]}
    assert headers["origin"] == "platform"  # original headers too
    assert headers["__connect.errors.stage"] == "TRANSFORMATION"
    assert headers["connector.errors.reason"] == "no-contact-identifier"
    assert malformed["value"]["hex"] == "c3ff00" and malformed["value"]["base64"] == "w/8A"
    assert malformed["value"]["error"].startswith(("malformed-avro", "truncated"))
    assert empty["value"]["size"] == 0 and "empty" in empty["value"]["error"]

    commands = json_lines(topics, "show", topics.commands_dlq)
    body = commands[0]["value"]["decoded"]
    assert commands[0]["value"]["schema"] == COMMAND_SCHEMA
    assert body["externalEventId"] == "web-1"
    assert body["command"]["connector.v1.Attendance"]["email"] == "a@example.com"

    text = cli(topics, "show", topics.activity_dlq)
    assert text.exit_code == 0
    assert f"value (raw {ACTIVITY_SCHEMA}):" in text.stdout
    assert "value: not decoded" in text.stdout and "hex c3ff00" in text.stdout
    assert "    connector.errors.reason: malformed-avro" in text.stdout


def test_show_filters(topics: Topics, producer_factory: Any) -> None:
    fill(topics, producer_factory())
    dlq = topics.commands_dlq

    def reasons(*args: str) -> list[str]:
        return [r["reason"] for r in json_lines(topics, "show", dlq, *args)]

    assert reasons("--reason", "event-not-found") == ["event-not-found"]
    assert reasons("--reason", "event-not-found", "--reason", "hubspot-rejected") == [
        "event-not-found", "hubspot-rejected"]
    assert reasons("--status", "429") == ["retry-budget-exhausted"]
    assert reasons("--status", "4xx") == ["event-not-found", "retry-budget-exhausted",
                                          "hubspot-rejected"]
    assert reasons("--status", "5xx") == []
    assert reasons("--webinar", "web-1") == ["event-not-found", "hubspot-rejected"]
    assert reasons("--since", "150m") == ["retry-budget-exhausted", "hubspot-rejected"]
    assert reasons("--until", "150m") == ["event-not-found"]
    assert reasons("--since", "150m", "--until", "90m") == ["retry-budget-exhausted"]
    assert reasons("--limit", "1") == ["event-not-found"]
    assert reasons("--record", "0:2") == ["hubspot-rejected"]
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 150 * 60))
    assert reasons("--since", iso) == ["retry-budget-exhausted", "hubspot-rejected"]


# --------------------------------------------------------------------------- redrive


def commands_on(t: Topics) -> list[Any]:
    return read_all({"bootstrap.servers": t.bootstrap}, t.commands)


def test_redrive_dry_run_execute_and_progress(topics: Topics, producer_factory: Any) -> None:
    made = fill(topics, producer_factory())
    dlq = topics.commands_dlq
    originals = {(m.offset()): m for m in read_all({"bootstrap.servers": topics.bootstrap}, dlq)}

    dry = ok_json(topics, "redrive", dlq)
    assert dry["mode"] == "dry-run" and dry["selected"] == 3 and dry["sent"] == 0
    assert [(r["target_partition"], r["status"]) for r in dry["records"]] == [
        (1, 404), (0, 429), (1, 400)]
    assert dry["targets"] == {topics.commands: 3}
    assert commands_on(topics) == []  # a dry run sends nothing
    assert ok_json(topics, "redrive", dlq)["selected"] == 3  # ... and records nothing

    first = ok_json(topics, "redrive", dlq, "--reason", "hubspot-rejected", "--execute")
    assert (first["mode"], first["selected"], first["sent"], first["failed"]) == (
        "execute", 1, 1, 0)
    sent = commands_on(topics)
    assert len(sent) == 1
    message, letter = sent[0], originals[2]
    assert message.partition() == 1  # the original partition
    assert message.key() == made["commands"][2].key == letter.key()
    assert message.value() == letter.value()
    headers = message.headers()
    assert headers[0] == ("traceparent", b"00-trace")  # original headers, first and unchanged
    assert not any(n.startswith(("__connect.errors.", "connector.errors.")) for n, _ in headers)
    by_name = header_map(headers)
    assert by_name["connector.redrive.attempt"] == "1"
    assert by_name["connector.redrive.from"] == f"{dlq}/0/2"
    (entry,) = read_history(headers)
    assert entry["reason"] == "hubspot-rejected" and entry["status"] == 400
    assert (entry["topic"], entry["partition"], entry["offset"]) == (topics.commands, 1, 7)

    # the rest: the record already sent is skipped
    rest = ok_json(topics, "redrive", dlq, "--execute", "--rate", "50")
    assert (rest["selected"], rest["sent"], rest["skipped_redriven"]) == (2, 2, 1)
    assert [r["offset"] for r in rest["records"]] == [0, 1]
    assert sorted(header_map(m.headers())["connector.redrive.from"]
                  for m in commands_on(topics)) == [f"{dlq}/0/0", f"{dlq}/0/1", f"{dlq}/0/2"]

    again = ok_json(topics, "redrive", dlq, "--execute")
    assert (again["selected"], again["sent"], again["skipped_redriven"]) == (0, 0, 3)
    assert len(commands_on(topics)) == 3
    listed = {s["topic"]: s for s in ok_json(topics, "list")["topics"]}
    assert listed[dlq]["pending"] == 0 and listed[dlq]["redriven"] == 3
    assert json_lines(topics, "show", dlq, "--pending") == []
    assert all(r["redriven"] for r in json_lines(topics, "show", dlq))

    forced = ok_json(topics, "redrive", dlq, "--execute", "--from-start", "--webinar", "web-2")
    assert (forced["selected"], forced["sent"]) == (1, 1)
    assert len(commands_on(topics)) == 4

    text = cli(topics, "redrive", dlq)
    assert text.exit_code == 0
    assert "dry run: would redrive 0 record(s)" in text.stdout
    assert "3 already redriven skipped (--from-start includes them)" in text.stdout


def test_redrive_to_another_topic(topics: Topics, producer_factory: Any,
                                  topic_factory: Any) -> None:
    fill(topics, producer_factory())
    other = topic_factory("elsewhere", 1)
    result = ok_json(topics, "redrive", topics.activity_dlq, "--to", other, "--execute",
                     "--reason", "malformed-avro")
    assert result["targets"] == {other: 1}
    (message,) = read_all({"bootstrap.servers": topics.bootstrap}, other)
    assert message.key() == b"web-bad" and message.value() == b"\xc3\xff\x00"
    assert read_all({"bootstrap.servers": topics.bootstrap}, topics.activity) == []


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_answered_with_clear_messages_and_exit_codes(
        topics: Topics, producer_factory: Any) -> None:
    fill(topics, producer_factory())
    dlq = topics.commands_dlq

    unknown = cli(topics, "show", "no-such-topic")
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("error: topic no-such-topic does not exist "
                                     "(dead-letter topics: ")
    assert topics.commands_dlq in unknown.stderr and topics.activity_dlq in unknown.stderr
    for command in ("show", "redrive"):
        not_dlq = cli(topics, command, topics.activity)
        assert not_dlq.exit_code == 1
        assert f"topic {topics.activity} is not a dead-letter topic; did you mean " \
               f"{topics.activity_dlq}?" in not_dlq.stderr

    cases = [
        (["show", dlq, "--since", "yesterday"], "--since: 'yesterday' is not a time: expected"),
        (["show", dlq, "--since", "2999-01-01"], "--since 2999-01-01 is in the future"),
        (["redrive", dlq, "--since", "2999-01-01T00:00Z"], "is in the future"),
        (["show", dlq, "--until", "1h", "--since", "2h", "--until", "3h"], "is after --until"),
        (["show", dlq, "--status", "42"], "--status: '42' is not an HTTP status"),
        (["redrive", dlq, "--record", "zero"], "expected PARTITION:OFFSET, e.g. 0:12"),
        (["redrive", dlq, "--to", dlq], "cannot redrive a dead-letter topic into itself"),
        (["redrive", dlq, "--rate", "-1"], "Invalid value for '--rate'"),
        (["show", dlq, "--limit", "0"], "Invalid value for '--limit'"),
    ]
    for args, message in cases:
        result = cli(topics, *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)

    bad_settings = CliRunner().invoke(main, ["dlq", "list"], env={
        **topics.env, "CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": "no-port"})
    assert bad_settings.exit_code == 2
    assert "CONNECTOR_KAFKA__BOOTSTRAP_SERVERS" in bad_settings.stderr
    bad_client = CliRunner().invoke(main, ["dlq", "list"], env={
        **topics.env, "CONNECTOR_KAFKA__EXTRA": '{"no.such.property": "1"}'})
    assert bad_client.exit_code == 1
    assert bad_client.stderr.startswith("error: invalid Kafka client settings")

    missing_to = cli(topics, "redrive", dlq, "--to", "nowhere-at-all", "--execute")
    assert missing_to.exit_code == 1
    assert "the --to topic nowhere-at-all does not exist; nothing was sent" in missing_to.stderr
    assert commands_on(topics) == []


# --------------------------------------------------------------------------- --account


def account_letters(t: Topics, producer: Any) -> dict[str, list[tuple[int, bytes]]]:
    """Dead letters of two accounts as the sink will write them when an account has no usable
    install: some with the connector.errors.account header, some (older) without; one value
    that does not decode. Returns each account's (source partition, value) pairs."""
    def command(webinar: str, account: str, email: str) -> Command:
        return Command(webinar, account, Attendance("REGISTERED", None, email, 1_767_261_600_000))

    made: dict[str, list[tuple[int, bytes]]] = {"acct-a": [], "acct-b": []}
    rows = [  # (account, header?, reason, source partition)
        ("acct-a", True, "hubspot-install-revoked", 0),
        ("acct-b", False, "hubspot-install-revoked", 1),
        ("acct-a", False, "no-hubspot-install", 1),
        ("acct-b", True, "hubspot-missing-scopes", 0),
        ("acct-a", False, "hubspot-install-revoked", 0),
    ]
    for n, (account, header, reason, partition) in enumerate(rows):
        value = command_value(command(f"web-{account}", account, f"p{n}@example.com"))
        source = SourceRecord(t.commands, partition, 10 + n, f"web-{account}".encode(), value,
                              [("traceparent", b"00-trace")])
        put(producer, t.commands_dlq, DeadLetter(
            source, Stage.SINK, reason, "no usable install", "connector.sink.Applier",
            account=account if header else None))
        made[account].append((partition, value))
    put(producer, t.commands_dlq, DeadLetter(
        SourceRecord(t.commands, 0, 20, b"web-x", b"\x00\xff"), Stage.DECODE, "undecodable",
        "bad magic", "connector.sink.Intake"))
    valid, _ = activity_value()  # the sample's account: acct-1
    put(producer, t.activity_dlq, DeadLetter(
        SourceRecord(t.activity, 0, 3, b"web-1", valid), Stage.NORMALIZE,
        "no-contact-identifier", "no email", "connector.normalize.Normalizer"), partition=0)
    assert producer.flush(30) == 0
    return made


def test_account_filter_lists_shows_and_redrives_exactly_one_accounts_dead_letters(
        topics: Topics, producer_factory: Any) -> None:
    made = account_letters(topics, producer_factory())
    dlq = topics.commands_dlq

    listed = {s["topic"]: s for s in ok_json(topics, "list", "--account", "acct-a")["topics"]}
    assert listed[dlq]["records"] == 3 and listed[dlq]["skipped_undecodable"] == 1
    assert listed[dlq]["by_reason"] == {"hubspot-install-revoked": 2, "no-hubspot-install": 1}
    assert listed[topics.activity_dlq]["records"] == 0
    everyone = {s["topic"]: s for s in ok_json(topics, "list")["topics"]}
    assert everyone[dlq]["records"] == 6 and "skipped_undecodable" not in everyone[dlq]

    shown = cli(topics, "show", dlq, "--account", "acct-b", "--json")
    assert shown.exit_code == 0, shown.output
    records = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [r["reason"] for r in records] == ["hubspot-install-revoked", "hubspot-missing-scopes"]
    assert {r["value"]["decoded"]["externalAccountId"] for r in records} == {"acct-b"}
    assert "2 of 6 record(s) shown; 1 skipped as undecodable" in shown.stderr
    (platform,) = json_lines(topics, "show", topics.activity_dlq, "--account", "acct-1")
    assert platform["value"]["decoded"]["accountId"] == "acct-1"
    assert json_lines(topics, "show", topics.activity_dlq, "--account", "acct-a") == []

    dry = ok_json(topics, "redrive", dlq, "--account", "acct-a")
    assert (dry["selected"], dry["skipped_undecodable"], dry["accounts"]) == (3, 1, ["acct-a"])
    assert commands_on(topics) == []

    done = ok_json(topics, "redrive", dlq, "--account", "acct-a", "--execute")
    assert (done["selected"], done["sent"], done["failed"]) == (3, 3, 0)
    codec = build_codec(TopicFormat(Framing.SINGLE_OBJECT, COMMAND_SCHEMA), "c", CATALOG)
    sent = commands_on(topics)
    assert sorted((m.partition(), m.value()) for m in sent) == sorted(made["acct-a"])
    assert {codec.decode(m.value())["externalAccountId"] for m in sent} == {"acct-a"}
    assert not any(name == "connector.errors.account" for m in sent for name, _ in m.headers())

    text = cli(topics, "redrive", dlq, "--account", "acct-a", "--account", "acct-b")
    assert text.exit_code == 0, text.output
    assert "would redrive 2 record(s) from " + dlq + " (account acct-a, acct-b)" in text.stdout
    assert "3 already redriven skipped" in text.stdout
    assert "1 skipped as undecodable (--account cannot tell whose they are)" in text.stdout
    assert len(commands_on(topics)) == 3  # B's are still pending, untouched
    assert cli(topics, "show", dlq, "--account", "").exit_code == 2
