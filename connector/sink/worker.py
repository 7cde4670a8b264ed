"""``SinkWorker``: the commands topic into HubSpot, one consumer, one thread.

Lifecycle (STYLE habit 6)::

    start   subscribe (cooperative-sticky); rebalance callbacks are assign / revoke / lost
    add     one consumed record -> decoded command -> batcher (or parking, or dead letter)
    flush   while the rate budget has a slot: apply the best work item (Batcher.take);
            probe parked events
    commit  (every ``commit_interval_seconds``) hand dead letters to the producer and serve its
            callbacks, then commit each partition's lowest unfinished offset, asynchronously
    revoke  flush what can go without waiting, commit (asynchronously), forget the partitions
    stop    drain (bounded by ``drain_seconds``), deliver dead letters (bounded), commit and
            wait for the broker's answer (bounded), close (bounded)

Requests are the scarce resource: the loop sends only while the rate budget has a free slot,
and while it has none it keeps consuming, so groups fill up and the next request carries a full
batch. What it holds is bounded by ``max_buffered``: at that many commands (batcher and stash)
every assigned partition is paused — the loop still polls, so the worker stays in its group —
and resumed once a tenth of the bound has been sent. Waiting inside a work item — backoff
between retries, a second request (an objectId lookup, a split batch) — is
:meth:`SinkWorker.idle`: it pauses every assigned partition and keeps polling (anything a poll
still returns is stashed in order), then resumes. Nothing sleeps in the poll loop. A 401/403
stops the worker with :class:`HubSpotAccessError`: the finished commands are committed, the
unapplied ones are not, nothing is dead-lettered for it.

The broker may go away at any time (a rolling restart, a crash) and the worker keeps going;
no call waits on it without a bound:

- Commits are asynchronous: ``consumer.commit(asynchronous=True)`` and the result arrives in
  :meth:`SinkWorker.on_commit` (the consumer's ``on_commit``, served by consume/poll). Only a
  confirmed offset counts as committed (``OffsetTracker.committed``); a failed commit is retried
  at the next interval, one that got no answer after ``commit_retry_seconds`` too. One commit is
  outstanding at a time (librdkafka defers commits while no coordinator is known; they must not
  pile up). A synchronous commit could wait forever for a coordinator.
- In :meth:`SinkWorker.revoke` the commit is asynchronous as well: a rebalance callback cannot
  poll, so it cannot wait for an answer with a bound, and a synchronous commit has none.
  librdkafka queues the commit to the coordinator before the rejoin that hands the partition
  over, so it normally lands first; if it does not (no coordinator then), the next owner
  replays from the last confirmed commit, which HubSpot takes idempotently (at least once).
- :meth:`SinkWorker.stop` commits and polls (partitions paused) until the broker confirms or
  ``commit_wait_seconds`` pass, then closes the consumer in a daemon thread joined for at most
  ``close_timeout_seconds`` (``close()`` can hang while the coordinator is away, librdkafka
  #3740).
- A dead letter finishes its command only once the producer confirms its delivery, so no
  commit passes an undelivered one. A letter keeps its produce arguments until then: a delivery
  that failed for good (e.g. ``_MSG_TIMED_OUT`` after a long outage) or a full local queue is
  produced again at the next commit interval; a fatal producer error rebuilds the producer
  (``producer_factory``) and produces every unconfirmed letter again. The loop only serves the
  producer's callbacks (``poll(0)``); ``stop`` flushes for at most ``dlq_timeout_seconds``.
- Consume errors are logged; a fatal one ends the worker (``sink.consumer_fatal``) so that a
  supervisor restarts it.

Progress (``connector.telemetry.progress``): a confirmed commit, a finished work item, a parked
event's probe and any deliberate wait on HubSpot's clock (rate budget, retry backoff) are
progress; every commit interval the worker reports its backlog (lag from locally cached
watermarks, commands held, offsets not yet confirmed, dead letters undelivered) and what it
waits on (``dead-letter-delivery``, ``kafka-commit``, ``kafka-fetch``, ``hubspot``, ...).

Telemetry: each consumed command gets a ``consume`` span (parent: the normalizer's ``send``
span, from the record's headers) and keeps that span's context in its headers, so the
``sink batch`` span around each work item continues the trace of its first sampled command and
the HubSpot request spans (the client's transport, see ``telemetry.http_transport``) are its
children; dead letters carry it too. Metrics: records in, dead letters by reason, batch fill
ratio, the rate budget left after each work item, and the consumer lag.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from connector.dlq import DeadLetter, Stage
from connector.hubspot.errors import HubSpotHTTPError, NotFoundError
from connector.kafka.lifecycle import close_within
from connector.normalize.command import Command
from connector.serde import DecodeFailure, SourceRecord, TopicDecoder
from connector.sink.apply import COMPONENT, Applier, Failure, Reason
from connector.sink.batch import (
    AttendanceBatch,
    Batcher,
    EventWork,
    Partition,
    Pending,
    Work,
    partition_of,
)
from connector.sink.budget import RateBudget
from connector.sink.errors import DeadLetterDeliveryError, HubSpotAccessError, SinkInterrupted
from connector.sink.offsets import OffsetTracker
from connector.sink.outbox import DeadLetterOutbox
from connector.sink.park import ParkingLot
from connector.sink.request import EventKey, IdentifierKind, is_event_upsert
from connector.telemetry import Telemetry
from connector.telemetry.lag import cached_lag
from connector.telemetry.progress import ProgressWatch

log = logging.getLogger("connector.sink")

Clock = Callable[[], float]


def _key(tp: Any) -> Partition:
    return (tp.topic, tp.partition)


class SinkWorker:
    """Consumes commands, applies them to HubSpot, dead-letters what fails, commits the rest."""

    def __init__(
        self,
        *,
        consumer: Any,
        producer: Any,
        applier: Applier,
        decoder: TopicDecoder,
        batcher: Batcher,
        parking: ParkingLot,
        topic: str,
        dlq_topic: str,
        stop: threading.Event,
        clock: Clock,
        commit_interval_seconds: float = 1.0,
        drain_seconds: float = 20.0,
        poll_seconds: float = 0.2,
        max_poll_records: int = 500,
        max_buffered: int = 100_000,
        dlq_timeout_seconds: float = 10.0,
        commit_retry_seconds: float = 15.0,
        commit_wait_seconds: float = 10.0,
        close_timeout_seconds: float = 10.0,
        telemetry: Telemetry | None = None,
        budget: RateBudget | None = None,
        group: str = "",
        producer_factory: Callable[[], Any] | None = None,
        progress: ProgressWatch | None = None,
    ) -> None:
        """``on_commit`` must be the consumer's ``on_commit`` callback (the runner wires it):
        only what it confirms counts as committed. ``producer_factory`` builds a new dead-letter
        producer after a fatal error (None: such an error ends the worker). ``progress``: where
        the worker reports progress (None: a watch of its own)."""
        self._consumer = consumer
        self._outbox = DeadLetterOutbox(producer, self._letter_delivered,
                                        producer_factory=producer_factory)
        self._applier = applier
        self._decoder = decoder
        self._batcher = batcher
        self._parking = parking
        self._topic = topic
        self._dlq_topic = dlq_topic
        self._stop = stop
        self._clock = clock
        self._commit_interval = commit_interval_seconds
        self._drain_seconds = drain_seconds
        self._poll_seconds = poll_seconds
        self._max_poll = max_poll_records
        self._max_buffered = max(max_buffered, 1)
        self._paused: set[Partition] = set()
        self._dlq_timeout = dlq_timeout_seconds
        self._commit_retry = commit_retry_seconds
        self._commit_wait = commit_wait_seconds
        self._close_timeout = close_timeout_seconds
        self._commit_sent: float | None = None  # when the outstanding commit was sent
        self._trackers: dict[Partition, OffsetTracker] = {}
        self._stash: list[Any] = []
        self._in_flight: Work | None = None
        self._no_wait = False
        self._closing = False
        self._drain_deadline: float | None = None
        self._fatal: HubSpotAccessError | None = None
        self._next_commit = 0.0
        self.stats: Counter[str] = Counter()
        telemetry = telemetry if telemetry is not None else Telemetry.disabled()
        self._tracing = telemetry.tracing
        self._metrics = telemetry.metrics
        self._budget = budget
        self._lag = telemetry.lag_monitor(group or topic)
        self._progress = progress if progress is not None else ProgressWatch(
            "sink", clock=clock, metrics=telemetry.metrics)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Join the group."""
        self._consumer.subscribe(
            [self._topic], on_assign=self.assign, on_revoke=self.revoke, on_lost=self.lost
        )
        log.info("sink.started topic=%s dlq_topic=%s", self._topic, self._dlq_topic)

    def run(self) -> None:
        """start, then poll / add / flush / commit until ``stop`` is set; then stop()."""
        self.start()
        try:
            while not self._stop.is_set():
                self.step()
        except HubSpotAccessError as exc:
            log.critical("sink.fatal status=%s correlation_id=%s error=%s",
                         exc.status, exc.correlation_id, exc)
            self._fatal = exc
            raise
        except KafkaException as exc:
            log.critical("sink.consumer_fatal error=%s", exc)
            raise
        finally:
            self.stop()

    def step(self) -> None:
        """One turn of the loop."""
        messages, self._stash = self._stash, []
        self._backpressure(len(messages))
        messages += self._consumer.consume(self._max_poll, self._poll_timeout())
        self._raise_fatal()
        self._lag.maybe_refresh(self._consumer)
        for message in messages:
            self.add(message)
        try:
            self.flush()
        except SinkInterrupted as exc:
            log.info("sink.interrupted reason=%s", exc)
        self.commit()

    def stop(self) -> None:
        """Drain what is in hand (bounded), deliver dead letters (bounded), commit and wait for
        the answer (bounded), leave the group (bounded)."""
        if self._closing:
            return
        try:
            if self._fatal is None:
                self._progress.waiting_on("shutdown-drain")
                self._drain_deadline = self._drain_deadline or self._clock() + self._drain_seconds
                try:
                    self.flush(everything=True)
                except SinkInterrupted as exc:
                    log.info("sink.drain_interrupted reason=%s", exc)
            self._outbox.pump(self._dlq_timeout)
            if self._outbox:
                log.warning("sink.dead_letters_undelivered count=%s (not committed: the next "
                            "owner replays them)", len(self._outbox))
            self._commit_and_wait()
        finally:
            self._closing = True
            self._close_consumer()
            log.info("sink.stopped %s", " ".join(f"{k}={v}" for k, v in sorted(self.stats.items())))

    def _commit_and_wait(self) -> None:
        """Commit, then poll (partitions paused) until the broker confirmed every partition's
        position, for at most ``commit_wait_seconds``."""
        self._progress.waiting_on("kafka-commit")
        deadline = self._clock() + self._commit_wait
        try:
            self._consumer.pause([TopicPartition(t, p) for t, p in self._trackers])
            self._commit(list(self._trackers), force=True)
            while self._unconfirmed():
                left = deadline - self._clock()
                if left <= 0:
                    log.warning("sink.final_commit_unconfirmed partitions=%s seconds=%s",
                                self._unconfirmed(), self._commit_wait)
                    return
                self._consumer.poll(min(left, self._poll_seconds))  # serves on_commit
                if self._commit_sent is None:  # answered, but not every position: again
                    self._commit(list(self._trackers))
        except KafkaException as exc:  # e.g. the consumer failed fatally: nothing to wait for
            log.warning("sink.commit_failed error=%s", exc)

    def _unconfirmed(self) -> list[Partition]:
        """Partitions whose position the broker has not confirmed."""
        return [key for key, tracker in self._trackers.items()
                if tracker.to_commit() is not None]

    def _close_consumer(self) -> None:
        """``close()``, waited for at most ``close_timeout_seconds``."""
        self._progress.waiting_on("kafka-close")
        if not close_within(self._consumer.close, self._close_timeout, "sink-consumer"):
            log.warning("sink.close_timeout seconds=%s (the group coordinator may be away; "
                        "the member leaves the group when its session times out)",
                        self._close_timeout)

    # ----------------------------------------------------------------- rebalance callbacks

    def assign(self, consumer: Any, partitions: list[Any]) -> None:
        """Partitions added to this worker."""
        for tp in partitions:
            self._trackers.setdefault(_key(tp), OffsetTracker())
        log.info("sink.assigned partitions=%s", [_key(tp) for tp in partitions])

    def revoke(self, consumer: Any, partitions: list[Any]) -> None:
        """Partitions taken away: flush what can go now, commit (asynchronously: a callback
        cannot wait for the answer, see the module docstring), forget them."""
        keys = [_key(tp) for tp in partitions if _key(tp) in self._trackers]
        try:
            if not self._closing and self._in_flight is None and self._fatal is None:
                for key in keys:
                    self._flush_without_waiting(key)
            self._commit(keys, force=True)
        except HubSpotAccessError as exc:
            self._fatal = exc  # raised from the loop once the callback returns
        except (KafkaException, DeadLetterDeliveryError) as exc:
            log.warning("sink.revoke_commit_failed error=%s", exc)
        finally:
            self._forget(keys)
        log.info("sink.revoked partitions=%s", keys)

    def lost(self, consumer: Any, partitions: list[Any]) -> None:
        """Partitions lost without a chance to commit: forget them (the new owner replays)."""
        keys = [_key(tp) for tp in partitions]
        self._forget(keys)
        log.warning("sink.lost partitions=%s", keys)

    def _forget(self, keys: list[Partition]) -> None:
        for key in keys:
            self._trackers.pop(key, None)
            self._paused.discard(key)
            self._batcher.drop_partition(key)
            self._parking.drop_partition(key)
        self._stash = [m for m in self._stash if (m.topic(), m.partition()) not in keys]
        self._outbox.drop_partitions(keys)

    def _flush_without_waiting(self, key: Partition) -> None:
        self._no_wait = True
        try:
            self._batcher.seal_all(key)
            while (work := self._batcher.pop_ready(key)) is not None:
                self._execute(work)
        except SinkInterrupted:
            pass  # what could not go now is replayed by the partition's next owner
        finally:
            self._no_wait = False

    # ----------------------------------------------------------------- add

    def add(self, message: Any) -> None:
        """One consumed record."""
        error = message.error()
        if error is not None:
            if error.fatal():
                raise KafkaException(error)  # run() logs it; a supervisor restarts the worker
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("sink.consume_error error=%s", error)
            return
        key = (message.topic(), message.partition())
        tracker = self._trackers.get(key)
        if tracker is None:
            return  # not ours any more
        source = SourceRecord.from_message(message)
        tracker.seen(source.offset)
        self.stats["consumed"] += 1
        self._metrics.records_in(source.topic)
        rt = self._tracing.consume(source)
        with rt:
            if rt.sampled:  # what follows (batch, requests, dead letter) continues this span
                source = dataclasses.replace(source, headers=rt.inject(source.headers))
            with rt.decode():
                decoded = self._decoder.decode(source)
            if isinstance(decoded, DecodeFailure):
                rt.dead_letter(Reason.UNDECODABLE)
                self._dead_letter(DeadLetter(
                    source=source, stage=Stage.DECODE, reason=Reason.UNDECODABLE,
                    message=decoded.describe(), component=COMPONENT,
                    exception_class=decoded.exception_class,
                ))
                return
            try:
                command = Command.from_avro(decoded.value)
            except (KeyError, TypeError, ValueError) as exc:
                rt.dead_letter(Reason.INVALID_COMMAND)
                self._dead_letter(DeadLetter(
                    source=source, stage=Stage.SINK, reason=Reason.INVALID_COMMAND,
                    message=f"not a HubSpot command: {type(exc).__name__}: {exc}",
                    component=COMPONENT, exception_class=type(exc).__name__,
                ))
                return
            self._route(Pending(source, command))

    def _route(self, pending: Pending) -> None:
        if pending.event in self._parking and not is_event_upsert(pending.command):
            self._parking.add(pending)
            return
        try:
            self._batcher.add(pending)
        except ValueError as exc:
            failure = Failure.from_error(pending, Reason.INVALID_COMMAND, exc)
            self._dead_letter(failure.dead_letter())

    # ----------------------------------------------------------------- flush

    def flush(self, *, everything: bool = False) -> None:
        """Apply work while the rate budget has a slot (everything, waiting for the budget,
        when asked); probe parked events."""
        while True:
            slots = self._slots()
            if not (everything or slots):
                break
            work = self._batcher.take(spare=self._is_spare(slots), everything=everything)
            if work is None:
                break
            self._execute(work)
        self._probe_parked()

    def _slots(self) -> int:
        """Requests the rate budget allows now."""
        return self._budget.free() if self._budget is not None else self._batcher.max_inputs

    def _is_spare(self, slots: int) -> bool:
        """The free slots could carry every held command at full batches."""
        return slots * self._batcher.max_inputs >= len(self._batcher)

    def _backpressure(self, stashed: int) -> None:
        """Pause every assigned partition while ``max_buffered`` commands are held; resume
        once a tenth of that was sent."""
        held = len(self._batcher) + stashed
        if held >= self._max_buffered:
            more = [key for key in self._trackers if key not in self._paused]
            if more:
                if not self._paused:
                    log.info("sink.backpressure held=%s max_buffered=%s", held,
                             self._max_buffered)
                self._consumer.pause([TopicPartition(t, p) for t, p in more])
                self._paused.update(more)
        elif self._paused and held <= self._max_buffered * 0.9:
            self._consumer.resume([TopicPartition(t, p) for t, p in self._paused
                                   if (t, p) in self._trackers])
            self._paused.clear()

    def _execute(self, work: Work) -> None:
        key = partition_of(work)
        self._in_flight = work
        operation = _operation_of(work)
        self._progress.waiting_on("hubspot")
        try:
            with self._tracing.sink_batch([p.source for p in work.items], operation=operation):
                outcome = self._applier.execute(work)
        except SinkInterrupted:
            if key in self._trackers:
                self._batcher.push_front(work)
            raise
        finally:
            self._in_flight = None
            self._report_budget()
        self._progress.progressed()
        if isinstance(work, AttendanceBatch):
            self._metrics.batch_sent(operation, len(work.items), self._batcher.max_inputs)
        tracker = self._trackers.get(key)
        if tracker is None:
            return  # revoked while in flight: the new owner replays it (idempotent)
        for pending in outcome.applied:
            tracker.finished(pending.offset)
        self.stats["applied"] += len(outcome.applied)
        for failure in outcome.failed:
            self._dead_letter(failure.dead_letter())
        if outcome.missing:
            self._park(outcome.missing)
        for event in outcome.events_found:
            if event in self._parking:
                self._release(event)

    def _park(self, missing: list[Pending]) -> None:
        events = list(dict.fromkeys(p.event for p in missing))
        later = [p for event in events for p in self._batcher.extract_event(event)]
        self._parking.park(missing + later)
        self.stats["parked"] += len(missing) + len(later)
        for event in events:
            log.info("sink.event_missing event=%s account=%s parked=%s",
                     event.event, event.account, len(missing) + len(later))

    def _release(self, event: EventKey) -> None:
        items = self._parking.release(event)
        log.info("sink.event_found event=%s released=%s", event.event, len(items))
        for pending in items:
            self._route(pending)
        self._batcher.seal_event(event)

    def _probe_parked(self) -> None:
        for parked in self._parking.due():
            if not parked.items or parked.items[0].partition not in self._trackers:
                continue
            with self._tracing.sink_batch([p.source for p in parked.items],
                                          operation="get_event"):
                found = self._applier.lookup(parked.event, parked.items)
            self._report_budget()
            self._progress.progressed()
            if found:
                self._release(parked.event)
                continue
            self._parking.probed(parked.event, self._applier.last_lookup_error)
            if self._parking.is_expired(parked.event):
                self._expire(parked.event)

    def _expire(self, event: EventKey) -> None:
        error = self._parking.last_error(event)
        items = self._parking.release(event)
        budget = self._parking.budget_seconds
        message = (f"marketing event externalAccountId={event.account} "
                   f"externalEventId={event.event} still does not exist in HubSpot after "
                   f"{budget:.0f}s (no EventUpsert of it succeeded)")
        http = error if isinstance(error, HubSpotHTTPError) else None
        for pending in items:
            self._dead_letter(Failure(
                pending, Reason.EVENT_NOT_FOUND, message,
                f"{NotFoundError.__module__}.{NotFoundError.__qualname__}",
                http.status if http else 404,
                http.category if http else "OBJECT_NOT_FOUND",
                http.correlation_id if http else None,
            ).dead_letter())

    # ----------------------------------------------------------------- waiting

    def idle(self, seconds: float, waiting_on: str = "hubspot-wait") -> None:
        """The sink's ``sleep``: pause the partitions, keep polling, resume.

        A deliberate wait on HubSpot's clock (``waiting_on``: ``hubspot-rate-budget``,
        ``hubspot-retry-backoff``) is progress: busy, not stalled."""
        if self._no_wait:
            raise SinkInterrupted("no waiting inside a rebalance callback")
        self._progress.waiting_on(waiting_on)
        deadline = self._clock() + seconds
        paused = [TopicPartition(t, p) for t, p in self._trackers if (t, p) not in self._paused]
        if paused:
            self._consumer.pause(paused)
        try:
            while True:
                self._check_interrupt()
                self._progress.progressed()
                left = deadline - self._clock()
                if left <= 0:
                    return
                message = self._consumer.poll(min(left, self._poll_seconds))
                if message is not None:
                    self._stash.append(message)
        finally:
            still = [tp for tp in paused
                     if _key(tp) in self._trackers and _key(tp) not in self._paused]
            if still:
                self._consumer.resume(still)

    def _check_interrupt(self) -> None:
        self._raise_fatal()
        if self._stop.is_set():
            now = self._clock()
            if self._drain_deadline is None:
                self._drain_deadline = now + self._drain_seconds
            if now >= self._drain_deadline:
                raise SinkInterrupted("shutting down: the drain time is over")
        if self._in_flight is not None and partition_of(self._in_flight) not in self._trackers:
            raise SinkInterrupted("the partition of the work in hand was revoked")

    def _report_budget(self) -> None:
        """Requests left in the rate budget's window and day, into the gauge."""
        budget = self._budget
        if budget is not None and self._metrics.enabled:
            self._metrics.set_rate_budget(window=max(budget.window_limit - budget.used, 0),
                                          daily=budget.daily_remaining)

    def _raise_fatal(self) -> None:
        if self._fatal is not None:
            raise self._fatal

    def _poll_timeout(self) -> float:
        """Until work may go (it is due and the budget has a slot) or a parked event is due."""
        now = self._clock()
        timeout = self._poll_seconds
        slots = self._slots()
        due = self._batcher.next_due(spare=self._is_spare(max(slots, 1)))
        if due is not None:
            wait = max(0.0, due - now)
            if not slots and self._budget is not None:
                wait = max(wait, self._budget.delay())
            timeout = min(timeout, wait)
        probe = self._parking.next_probe()
        if probe is not None:
            timeout = min(timeout, max(0.0, probe - now))
        return timeout

    # ----------------------------------------------------------------- dead letters, commits

    def _dead_letter(self, letter: DeadLetter) -> None:
        s = letter.source
        log.warning(
            "sink.dead_letter reason=%s topic=%s partition=%s offset=%s status=%s category=%s "
            "correlation_id=%s attempts=%s",
            letter.reason, s.topic, s.partition, s.offset, letter.http_status, letter.category,
            letter.correlation_id, letter.attempts,
        )
        args = letter.produce_args(self._dlq_topic, int(self._clock() * 1000))
        self._outbox.send((s.topic, s.partition), s.offset, args)
        self.stats["dead_lettered"] += 1
        self._metrics.dead_letter(s.topic, letter.reason)
        self._metrics.records_out(self._dlq_topic)

    def _letter_delivered(self, key: Partition, offset: int) -> None:
        """The producer confirmed a dead letter: its command is finished."""
        tracker = self._trackers.get(key)
        if tracker is not None:
            tracker.finished(offset)
        self._progress.progressed()

    def commit(self, *, force: bool = False) -> None:
        """Commit every partition's finished prefix (at most every commit interval), and
        report progress."""
        now = self._clock()
        if not force and now < self._next_commit:
            return
        self._next_commit = now + self._commit_interval
        self._commit(list(self._trackers), force=force)
        self._report_progress()

    def _commit(self, keys: list[Partition], *, force: bool = False) -> None:
        """Serve the dead letters, then send one asynchronous commit of the positions that moved
        since the last confirmed one, unless a commit is outstanding (and not ``force``).
        Never raises for Kafka: a failed commit is retried at the next interval."""
        self._outbox.pump()
        now = self._clock()
        sent = self._commit_sent
        if not force and sent is not None and now < sent + self._commit_retry:
            return  # the outstanding commit's answer comes through on_commit
        offsets = []
        for key in keys:
            tracker = self._trackers.get(key)
            position = tracker.to_commit() if tracker else None
            if position is not None:
                offsets.append(TopicPartition(key[0], key[1], position))
        if not offsets:
            return
        if sent is not None and not force:
            log.warning("sink.commit_unanswered seconds=%.0f (sent again)", now - sent)
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:  # e.g. no longer in the group: the next interval retries
            log.warning("sink.commit_failed error=%s", exc)
            return
        self._commit_sent = now

    def on_commit(self, error: Any, partitions: list[Any]) -> None:
        """The consumer's ``on_commit``: the broker's answer to a commit (served by consume or
        poll). Confirmed offsets become each tracker's ``committed``; errors are logged and the
        next interval commits again."""
        self._commit_sent = None
        if error is not None:
            log.warning("sink.commit_failed error=%s", error)
            return
        confirmed = []
        for tp in partitions or ():
            if tp.error is not None:
                log.warning("sink.commit_failed partition=%s error=%s", tp.partition, tp.error)
                continue
            tracker = self._trackers.get(_key(tp))
            if tracker is None or tp.offset < 0:
                continue  # revoked meanwhile
            if tracker.committed is None or tp.offset > tracker.committed:
                tracker.committed = tp.offset
                confirmed.append((tp.partition, tp.offset))
        if confirmed:
            self._progress.progressed()
            log.debug("sink.committed offsets=%s", confirmed)

    # ----------------------------------------------------------------- progress

    def _report_progress(self) -> None:
        """Tell the progress watch what the worker has to do and what it waits on; check it."""
        held = len(self._stash) + sum(t.unfinished for t in self._trackers.values())
        unconfirmed = self._unconfirmed()
        lag = cached_lag(self._consumer, self._trackers)
        progress = self._progress
        progress.set_backlog(lag=lag, in_hand=held + len(unconfirmed))
        if self._outbox:
            progress.waiting_on("dead-letter-delivery")
        elif held and self._budget is not None and self._budget.free() == 0:
            progress.waiting_on("hubspot-rate-budget")
            progress.progressed()  # waiting for HubSpot's window or day is busy, not stalled
        elif held and held == len(self._parking):
            progress.waiting_on("event-upsert")  # parked: probed with backoff (progress)
        elif held:
            progress.waiting_on("hubspot")
        elif unconfirmed:
            progress.waiting_on("kafka-commit")
        elif lag:
            progress.waiting_on("kafka-fetch")
        else:
            progress.waiting_on("nothing")
        progress.check()


def _operation_of(work: Work) -> str:
    """The HubSpotClient method a work item is sent with (the ``hubspot.operation`` of its
    requests), e.g. ``upsert_event`` or ``record_attendance_by_email``."""
    if isinstance(work, EventWork):
        return _EVENT_OPERATIONS.get(work.pending.command.kind, "event")
    if work.key.kind is IdentifierKind.VID:
        return "record_attendance"
    return "record_attendance_by_email"


_EVENT_OPERATIONS = {"EventUpsert": "upsert_event", "EventComplete": "complete_event",
                     "EventCancel": "cancel_event"}
