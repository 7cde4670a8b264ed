"""CommandReader: consumed records become admitted commands, or dead letters."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, cast

from connector.dlq import DeadLetter, Stage
from connector.normalize.command import COMMAND_SCHEMA, Attendance, Command
from connector.serde.catalog import SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.record import SourceRecord
from connector.serde.topic import TopicDecoder, TopicFormat, build_codec
from connector.sink.commands import CommandReader
from connector.sink.dead_letters import DeadLetters
from connector.sink.offsets import AssignedOffsets
from connector.sink.work import PendingCommand
from connector.telemetry import Telemetry
from connector.telemetry.progress import ProgressWatch
from tests.fakes import FakeMessage

TOPIC = "cmds"
CODEC = build_codec(TopicFormat(Framing.SINGLE_OBJECT, COMMAND_SCHEMA), TOPIC,
                    SchemaCatalog.from_directory())
COMMAND = Command("w1", "acct", Attendance("ATTENDED", None, "a@b.c", 1_767_261_600_000,
                                           {"firstname": "A"}, joinedAt=1, leftAt=2))


class Letters:
    """Collects dead letters (the DeadLetters a CommandReader sends to)."""

    def __init__(self) -> None:
        self.sent: list[DeadLetter] = []

    def send(self, letter: DeadLetter) -> None:
        self.sent.append(letter)


def reader(decoder: Any = None) -> tuple[CommandReader, list[PendingCommand], Letters]:
    offsets = AssignedOffsets(ProgressWatch("sink", clock=time.monotonic))
    offsets.assign([(TOPIC, 0)])
    admitted: list[PendingCommand] = []
    letters = Letters()
    telemetry = Telemetry.disabled()
    return CommandReader(decoder or TopicDecoder(CODEC), admitted.append, offsets=offsets,
                         dead_letters=cast(DeadLetters, letters), tracing=telemetry.tracing,
                         metrics=telemetry.metrics, stats=Counter()), admitted, letters


def test_a_command_record_is_admitted_as_its_command() -> None:
    read, admitted, letters = reader()
    read.add(FakeMessage(TOPIC, 0, 5, b"w1", CODEC.encode(COMMAND.to_avro())))
    [pending] = admitted
    assert pending.command.to_avro() == COMMAND.to_avro()
    assert (pending.source.topic, pending.source.offset, pending.source.key) == (TOPIC, 5, b"w1")
    assert not letters.sent


def test_an_undecodable_record_is_dead_lettered() -> None:
    read, admitted, letters = reader()
    read.add(FakeMessage(TOPIC, 0, 6, b"w1", b"\x00garbage"))
    [letter] = letters.sent
    assert not admitted
    assert (letter.stage, letter.reason) == (Stage.DECODE, "undecodable")
    assert letter.message.startswith("bad-magic: ")
    assert letter.source.offset == 6


class BadDatum:
    """Decodes every record into a datum that is not a command."""

    def decode_value(self, record: SourceRecord) -> Any:
        return {"externalAccountId": "acct-7", "command": ("connector.v1.Nothing", {})}


def test_a_datum_that_is_no_command_is_dead_lettered() -> None:
    read, admitted, letters = reader(BadDatum())
    read.add(FakeMessage(TOPIC, 0, 7, b"w1", b"anything"))
    [letter] = letters.sent
    assert not admitted
    assert (letter.stage, letter.reason) == (Stage.SINK, "invalid-command")
    assert letter.message == "not a HubSpot command: KeyError: 'Nothing'"
    assert letter.exception_class == "KeyError"
    assert letter.account == "acct-7"  # what `connector dlq --account` filters on


def test_a_record_of_a_partition_not_assigned_is_dropped() -> None:
    read, admitted, letters = reader()
    read.add(FakeMessage(TOPIC, 1, 0, b"w1", CODEC.encode(COMMAND.to_avro())))
    assert not admitted and not letters.sent
