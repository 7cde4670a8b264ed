"""The consumer side of the sink: polling, backpressure, and waiting while still polling.

What the worker holds is bounded by ``max_buffered``: at that many commands (batched and
stashed) every assigned partition is paused — the loop still polls, so the worker stays in its
group — and resumed once a tenth of the bound has been sent. Waiting inside a work item
(backoff between retries, the rate budget, a second request) is :meth:`Intake.idle`: it pauses
every assigned partition and keeps polling (anything a poll still returns is stashed, in order,
for the next turn), then resumes. Nothing sleeps in the poll loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from connector.clock import Clock
from connector.kafka.clients import KafkaException, TopicPartition
from connector.kafka.protocols import CommittingMember, ConsumedMessage
from connector.sink.interrupts import Interrupts
from connector.sink.offsets import AssignedOffsets
from connector.sink.options import SinkOptions
from connector.sink.work import Partition
from connector.telemetry.progress import ProgressWatch

log = logging.getLogger("connector.sink")


def _partitions(keys: list[Partition]) -> list[TopicPartition]:
    return [TopicPartition(topic, partition) for topic, partition in keys]


class Intake:
    """The worker's consumer: what it polls, what it pauses, and how it waits.

    ``offsets`` (None: new ones) must be the ones whose ``on_commit`` the consumer calls. The
    worker, its parts and the applier's waits share this intake's ``options``, ``clock``,
    ``progress``, ``offsets`` and ``interrupts``."""

    def __init__(self, consumer: CommittingMember, options: SinkOptions, *, stop: threading.Event,
                 clock: Clock, progress: ProgressWatch | None = None,
                 offsets: AssignedOffsets | None = None) -> None:
        self.consumer = consumer
        self.options = options
        self.clock = clock
        self.progress = progress if progress is not None else ProgressWatch("sink", clock=clock)
        self.offsets = offsets if offsets is not None else AssignedOffsets(self.progress)
        self.interrupts = Interrupts(stop, clock=clock, drain_seconds=options.drain_seconds,
                                     offsets=self.offsets)
        self._max_buffered = max(options.max_buffered, 1)
        self._paused: set[Partition] = set()
        self._stash: list[ConsumedMessage] = []
        #: The input holds more than the sink has read: the last poll came back full, or
        #: backpressure paused the partitions. Held groups will fill if they wait.
        self.behind = False

    @property
    def stashed(self) -> int:
        """Records polled while waiting, not yet handed out."""
        return len(self._stash)

    def receive(self, held: int, timeout: Callable[[], float],
                wake: threading.Event | None = None) -> list[ConsumedMessage]:
        """The stashed records and one poll's worth (for at most ``timeout()`` seconds), after
        pausing or resuming for the ``held`` commands. While every partition is paused there is
        nothing to read: the wait is on ``wake`` instead (work in flight landed), and the poll
        only serves callbacks."""
        messages, self._stash = self._stash, []
        self._backpressure(held + len(messages))
        seconds = timeout()
        if wake is not None and self._paused and seconds > 0 \
                and all(key in self._paused for key in self.offsets.trackers):
            wake.wait(seconds)
            wake.clear()
            seconds = 0.0
        polled = self.consumer.consume(self.options.max_poll_records, seconds)
        self.behind = len(polled) >= self.options.max_poll_records or bool(self._paused)
        messages.extend(polled)
        return messages

    def _backpressure(self, held: int) -> None:
        """Pause every assigned partition while ``max_buffered`` commands are held; resume
        once a tenth of that was sent."""
        if held >= self._max_buffered:
            more = [key for key in self.offsets.trackers if key not in self._paused]
            if more:
                if not self._paused:
                    log.info("sink.backpressure held=%s max_buffered=%s", held,
                             self._max_buffered)
                self.consumer.pause(_partitions(more))
                self._paused.update(more)
        elif self._paused and held <= self._max_buffered * 0.9:
            self.consumer.resume(_partitions([key for key in self._paused
                                              if key in self.offsets]))
            self._paused.clear()

    def rewind(self, key: Partition, offset: int) -> bool:
        """Read ``key`` again from ``offset``: what was stashed of it is dropped (it comes
        again), and the seek purges what the consumer had fetched of it. False when the
        consumer refused the seek (logged; the caller tries again later)."""
        topic, partition = key
        try:
            self.consumer.seek(TopicPartition(topic, partition, offset))
        except KafkaException as exc:
            log.warning("sink.rewind_failed partition=%s offset=%s error=%s", key, offset, exc)
            return False
        self._stash = [m for m in self._stash if (m.topic(), m.partition()) != key]
        return True

    def idle(self, seconds: float, waiting_on: str = "hubspot-wait") -> None:
        """The sink's ``sleep``: pause the partitions, keep polling, resume.

        A deliberate wait on HubSpot's clock (``waiting_on``: ``hubspot-rate-budget``,
        ``hubspot-retry-backoff``) is progress: busy, not stalled."""
        self.interrupts.check_may_wait()
        self.progress.waiting_on(waiting_on)
        deadline = self.clock() + seconds
        paused = [key for key in self.offsets.trackers if key not in self._paused]
        if paused:
            self.consumer.pause(_partitions(paused))
        try:
            self._poll_until(deadline)
        finally:
            still = [key for key in paused if key in self.offsets and key not in self._paused]
            if still:
                self.consumer.resume(_partitions(still))

    def _poll_until(self, deadline: float) -> None:
        while True:
            self.interrupts.check()
            self.progress.progressed()
            left = deadline - self.clock()
            if left <= 0:
                return
            message = self.consumer.poll(min(left, self.options.poll_seconds))
            if message is not None:
                self._stash.append(message)

    def pause_assigned(self) -> None:
        """Pause every assigned partition (the final commit polls only for its answer)."""
        self.consumer.pause(_partitions(self.offsets.keys()))

    def forget(self, keys: list[Partition]) -> None:
        """Partitions revoked or lost: their stashed records go."""
        for key in keys:
            self._paused.discard(key)
        self._stash = [m for m in self._stash if (m.topic(), m.partition()) not in keys]
