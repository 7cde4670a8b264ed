"""A backfill's commands, written in planned order to the topic its sink reads.

The temporary normalizer writes the range's commands in stream order: every webinar's
interleaved. This step rewrites them, partition by partition (a webinar's commands share one, by
their key), one event after another, each event's in the order of
:func:`connector.replay.requests.order_event`, so the sink fills its requests.

Memory stays bounded for ranges larger than memory: a first pass over a partition counts the
commands of each key (the webinar id; nothing decoded); the keys are then cut, in order of first
appearance, into *waves* of at most ``max_held`` commands, and each wave is one more pass over
the partition that holds only that wave's commands (decoded), orders and writes them. A single
webinar larger than ``max_held`` is written in chunks of ``max_held``, each in planned order
(chunk after chunk: order kept, a few requests less full). Cost: one read of the partition per
wave, which Kafka serves far faster than HubSpot takes the requests.

The last command of each batch group of an event (its state and identifier kind) carries the
:data:`~connector.sink.work.H_PLAN_SEAL` header: the sink sends that group's last, partial
request at once instead of holding it open for commands that will not come (and holding back
the next commands of the persons in it).

With ``accounts``, only those platform accounts' commands are written (the others are counted);
without, a record that does not decode is written too, first of its key (the sink dead-letters
it, as live).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connector.config import Settings
from connector.kafka import clients
from connector.kafka.clients import KafkaException
from connector.kafka.protocols import ProducerClient
from connector.normalize.command import Command
from connector.replay.cluster import TP, read_ranges
from connector.replay.errors import ReplayError
from connector.replay.requests import RequestCount, plan_event
from connector.serde.record import Decoded, SourceRecord
from connector.serde.topic import TopicCodecs
from connector.sink.work import H_PLAN_SEAL

__all__ = ["PlannedCommands", "plan_commands"]


@dataclass
class PlannedCommands:
    """What planning read and wrote (``written``: end offsets of the planned topic)."""

    count: RequestCount
    written: dict[TP, int] = field(default_factory=dict)
    commands: int = 0
    other_accounts: int = 0
    undecodable: int = 0
    waves: int = 0


def plan_commands(settings: Settings, source: dict[TP, int], target: str | None, *,
                  accounts: frozenset[str] | None, max_held: int,
                  check_stop: Callable[[], None]) -> PlannedCommands:
    """Plan the commands of ``source`` (partition -> end offset, read from 0) and write them to
    ``target``, same partitions (None: only count the requests, as a dry run does)."""
    decoder = TopicCodecs.from_settings(settings).decoder(settings.topics.commands)
    planned = PlannedCommands(RequestCount(settings.sink.max_inputs_per_request))
    producer: ProducerClient | None = None
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    def write(message: Any, seal: bool = False) -> None:
        planned.commands += 1
        if producer is None or target is None:
            return
        _, timestamp = message.timestamp()
        headers = list(message.headers() or [])
        if seal:
            headers.append((H_PLAN_SEAL, b"1"))
        clients.produce_waiting(producer, topic=target, key=message.key(),
                                value=message.value(), headers=headers or None,
                                partition=message.partition(),
                                timestamp=timestamp if timestamp > 0 else 0,
                                on_delivery=delivered)
        producer.poll(0)
        tp = (target, message.partition())
        planned.written[tp] = planned.written.get(tp, 0) + 1

    def command_of(message: Any) -> Command | None:
        result = decoder.decode(SourceRecord.from_message(message))
        if not isinstance(result, Decoded):
            planned.undecodable += 1
            return None
        try:
            command = Command.from_avro(result.value)
        except (KeyError, TypeError, ValueError):  # the sink dead-letters it (invalid-command)
            planned.undecodable += 1
            return None
        if accounts is not None and command.externalAccountId not in accounts:
            planned.other_accounts += 1
            return None
        return command

    try:
        if target is not None:
            producer = clients.producer(settings.kafka, {"linger.ms": 20})
        for tp, end in sorted(source.items()):
            for wave in _waves(settings, tp, end, max_held):
                planned.waves += 1
                _write_wave(settings, tp, end, wave, max_held, command_of, write, planned.count,
                            keep_undecodable=accounts is None, check_stop=check_stop)
        if producer is not None and (producer.flush(60) or failures):
            raise ReplayError(f"writing the planned commands failed: "
                              f"{failures[:3] or 'timed out'}")
    except KafkaException as exc:
        raise ReplayError(f"writing the planned commands failed: {exc.args[0]}") from exc
    return planned


def _waves(settings: Settings, tp: TP, end: int, max_held: int) -> list[set[bytes | None]]:
    """The partition's keys, in order of first appearance, cut into sets of at most
    ``max_held`` commands (a key larger than that alone)."""
    counts: Counter[bytes | None] = Counter()
    for message in read_ranges(settings.kafka, {tp: (0, end)}):
        counts[message.key()] += 1  # insertion order: first appearance
    waves: list[set[bytes | None]] = []
    held = max_held
    for key, count in counts.items():
        if held + count > max_held:
            waves.append(set())
            held = 0
        waves[-1].add(key)
        held += count
    return waves


def _write_wave(settings: Settings, tp: TP, end: int, wave: set[bytes | None], max_held: int,
                command_of: Callable[[Any], Command | None], write: Callable[..., None],
                count: RequestCount, *, keep_undecodable: bool,
                check_stop: Callable[[], None]) -> None:
    """One pass over the partition: the wave's commands, held per event, written in planned
    order (in chunks when one event alone exceeds ``max_held``)."""
    held: dict[tuple[str, str] | bytes | None, list[tuple[Any, Command | None]]] = {}
    size = 0
    for message in read_ranges(settings.kafka, {tp: (0, end)}):
        if message.key() not in wave:
            continue
        command = command_of(message)
        if command is None and not keep_undecodable:
            continue
        group = message.key() if command is None else \
            (command.externalAccountId, command.externalEventId)
        held.setdefault(group, []).append((message, command))
        size += 1
        if size >= max_held:
            check_stop()
            _flush(held, write, count)
            size = 0
    _flush(held, write, count)


def _flush(held: dict[Any, list[tuple[Any, Command | None]]], write: Callable[..., None],
           count: RequestCount) -> None:
    for items in held.values():
        for message, command in items:
            if command is None:  # undecodable: first, as the sink would dead-letter it
                write(message)
        decoded = [(index, command) for index, (_, command) in enumerate(items)
                   if command is not None]
        for index, seal in plan_event(decoded, count.max_inputs):
            message, command = items[index]
            assert command is not None
            write(message, seal)
            count.add(command, seal)
    held.clear()
