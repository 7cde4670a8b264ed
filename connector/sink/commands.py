"""Consumed records into pending commands; what cannot be decoded is dead-lettered.

Each consumed command gets a ``consume`` span (parent: the normalizer's ``send`` span, from the
record's headers) and keeps that span's context in its headers, so the ``sink batch`` span
around its work item continues the trace and its dead letter carries it too. Consume errors are
logged; a fatal one raises :class:`KafkaException` (the worker ends, a supervisor restarts it).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable
from typing import cast

from connector.dlq import DeadLetter, Stage
from connector.kafka.clients import KafkaError, KafkaException
from connector.kafka.protocols import ConsumedMessage, ConsumedRecord
from connector.normalize.command import Command
from connector.serde.record import DecodeFailure, SourceRecord
from connector.serde.topic import TopicDecoder
from connector.sink.dead_letters import DeadLetters
from connector.sink.offsets import AssignedOffsets
from connector.sink.outcome import COMPONENT, Reason
from connector.sink.shares import AccountShares
from connector.sink.work import PendingCommand
from connector.telemetry import Metrics, Tracing
from connector.telemetry.tracing import RecordTrace

log = logging.getLogger("connector.sink")


class CommandReader:
    """Reads consumed records of the assigned partitions as commands and hands each to
    ``admit`` (within the record's ``consume`` span)."""

    def __init__(self, decoder: TopicDecoder, admit: Callable[[PendingCommand], None], *,
                 offsets: AssignedOffsets, dead_letters: DeadLetters, tracing: Tracing,
                 metrics: Metrics, stats: Counter[str],
                 shares: AccountShares | None = None) -> None:
        """``shares``: the accounts' shares (app mode), which say which records of a partition
        sought back are read again."""
        self._shares = shares
        self._decoder = decoder
        self._admit = admit
        self._offsets = offsets
        self._dead_letters = dead_letters
        self._tracing = tracing
        self._metrics = metrics
        self._stats = stats

    def add(self, message: ConsumedMessage) -> None:
        """One consumed record: its command admitted, or its dead letter sent; consume errors
        and records of partitions no longer assigned are dropped."""
        error = message.error()
        if error is not None:
            if error.fatal():
                raise KafkaException(error)  # the worker logs it; a supervisor restarts it
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("sink.consume_error error=%s", error)
            return
        record = cast(ConsumedRecord, message)  # no error event: its coordinates are set
        tracker = self._offsets.trackers.get((record.topic(), record.partition()))
        if tracker is None:
            return  # not ours any more
        source = SourceRecord.from_message(record)
        if (self._shares is not None
                and self._shares.rereading((source.topic, source.partition))
                and tracker.below_read_position(source.offset)
                and not self._read_again(source)):
            return  # handled when first read
        tracker.seen(source.offset)
        self._stats["consumed"] += 1
        self._metrics.records_in(source.topic)
        rt = self._tracing.consume(source)
        with rt:
            if rt.sampled:  # what follows (batch, requests, dead letter) continues this span
                source = dataclasses.replace(source, headers=rt.inject(source.headers))
            pending = self._command(source, rt)
            if pending is not None:
                self._admit(pending)

    def _read_again(self, source: SourceRecord) -> bool:
        """A record of a partition sought back, below its read position: whether it is a
        skipped record of an account read again (else it was handled when first read; one
        that does not decode was dead-lettered then)."""
        assert self._shares is not None
        decoded = self._decoder.decode_value(source)
        account = None if isinstance(decoded, DecodeFailure) else _account_of(decoded)
        return self._shares.again((source.topic, source.partition), account, source.offset)

    def _command(self, source: SourceRecord, rt: RecordTrace) -> PendingCommand | None:
        with rt.decode():  # the datum alone: a Decoded around it would only be unwrapped
            decoded = self._decoder.decode_value(source)
        if isinstance(decoded, DecodeFailure):
            rt.dead_letter(Reason.UNDECODABLE)
            self._dead_letters.send(DeadLetter(
                source=source, stage=Stage.DECODE, reason=Reason.UNDECODABLE.value,
                message=decoded.describe(), component=COMPONENT,
                exception_class=decoded.exception_class,
            ))
            return None
        try:
            command = Command.from_avro(decoded)
        except (KeyError, TypeError, ValueError) as exc:
            rt.dead_letter(Reason.INVALID_COMMAND)
            self._dead_letters.send(DeadLetter(
                source=source, stage=Stage.SINK, reason=Reason.INVALID_COMMAND.value,
                message=f"not a HubSpot command: {type(exc).__name__}: {exc}",
                component=COMPONENT, exception_class=type(exc).__name__,
                account=_account_of(decoded),
            ))
            return None
        return PendingCommand(source, command)


def _account_of(decoded: object) -> str | None:
    """The platform account a datum that is no command names, if it names one as text."""
    account = decoded.get("externalAccountId") if isinstance(decoded, dict) else None
    return account if isinstance(account, str) and account else None
