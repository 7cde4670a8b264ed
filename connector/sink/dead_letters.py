"""The sink's dead letters: logged, counted, produced to the dead-letter topic, and their
commands finished once the producer confirmed the delivery (so no commit passes an undelivered
one; :mod:`connector.sink.outbox` keeps each letter until then).

A letter whose platform account is known (a command's ``externalAccountId``) names it in its
log line and counts in ``connector.sink.account.dead_letters`` (its series bounded by
:mod:`connector.telemetry.accounts`); one that did not decode has no account and counts in
``connector.dead_letters`` only, as every letter does."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from connector.clock import Clock
from connector.dlq import DeadLetter
from connector.kafka.protocols import DeliveryProducer
from connector.sink.offsets import AssignedOffsets
from connector.sink.outbox import DeadLetterOutbox
from connector.sink.work import Partition
from connector.telemetry import Metrics
from connector.telemetry.progress import ProgressWatch

log = logging.getLogger("connector.sink")


class DeadLetters:
    """Sends dead letters to ``dlq_topic`` and finishes their commands on delivery.

    ``producer_factory`` builds a new producer after a fatal error (None: such an error ends
    the worker with :class:`~connector.sink.errors.DeadLetterDeliveryError`)."""

    def __init__(self, producer: DeliveryProducer, *, dlq_topic: str, offsets: AssignedOffsets,
                 clock: Clock, metrics: Metrics, progress: ProgressWatch, stats: Counter[str],
                 producer_factory: Callable[[], DeliveryProducer] | None = None) -> None:
        self._outbox = DeadLetterOutbox(producer, self._delivered,
                                        producer_factory=producer_factory)
        self._dlq_topic = dlq_topic
        self._offsets = offsets
        self._clock = clock
        self._metrics = metrics
        self._progress = progress
        self._stats = stats

    def __len__(self) -> int:
        """Letters not yet confirmed."""
        return len(self._outbox)

    def send(self, letter: DeadLetter) -> None:
        """Log, count and produce one dead letter."""
        s = letter.source
        log.warning(
            "sink.dead_letter reason=%s account=%s topic=%s partition=%s offset=%s status=%s "
            "category=%s correlation_id=%s attempts=%s",
            letter.reason, letter.account, s.topic, s.partition, s.offset, letter.http_status,
            letter.category, letter.correlation_id, letter.attempts,
        )
        args = letter.produce_args(self._dlq_topic, int(self._clock() * 1000))
        self._outbox.send((s.topic, s.partition), s.offset, args)
        self._stats["dead_lettered"] += 1
        self._metrics.dead_letter(s.topic, letter.reason)
        if letter.account:
            self._metrics.account_dead_letter(letter.account, letter.reason)
        self._metrics.records_out(self._dlq_topic)

    def pump(self, timeout: float = 0.0) -> None:
        """Produce the undelivered letters again and serve delivery callbacks (for at most
        ``timeout`` seconds when > 0)."""
        self._outbox.pump(timeout)

    def drop_partitions(self, keys: list[Partition]) -> None:
        """Forget the letters of revoked partitions: their next owner replays the commands."""
        self._outbox.drop_partitions(keys)

    def _delivered(self, key: Partition, offset: int) -> None:
        """The producer confirmed a dead letter: its command is finished."""
        self._offsets.finished(key, offset)
        self._progress.progressed()
