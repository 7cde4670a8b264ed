"""``SinkWorker``: the commands topic into HubSpot, one consumer, one thread.

Lifecycle (STYLE habit 6)::

    start   subscribe (cooperative-sticky); rebalance callbacks are assign / revoke / lost
    add     one consumed record -> decoded command -> batcher (or parking, or dead letter)
    flush   while the rate budget has a slot: apply the best work item (Batcher.take);
            probe parked events
    commit  deliver pending dead letters, then commit each partition's lowest unfinished offset
    revoke  flush what can go without waiting, commit, forget the partitions
    stop    drain (bounded by ``drain_seconds``), commit, close

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
from connector.sink.park import ParkingLot
from connector.sink.request import EventKey, IdentifierKind, is_event_upsert
from connector.telemetry import Telemetry

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
        dlq_timeout_seconds: float = 30.0,
        telemetry: Telemetry | None = None,
        budget: RateBudget | None = None,
        group: str = "",
    ) -> None:
        self._consumer = consumer
        self._producer = producer
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
        self._trackers: dict[Partition, OffsetTracker] = {}
        self._stash: list[Any] = []
        self._awaiting: list[tuple[Partition, int]] = []
        self._delivery_errors: list[str] = []
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
        """Drain what is in hand (bounded), commit, leave the group."""
        if self._closing:
            return
        try:
            if self._fatal is None:
                self._drain_deadline = self._drain_deadline or self._clock() + self._drain_seconds
                try:
                    self.flush(everything=True)
                except SinkInterrupted as exc:
                    log.info("sink.drain_interrupted reason=%s", exc)
            self.commit(force=True)
        finally:
            self._closing = True
            self._consumer.close()
            log.info("sink.stopped %s", " ".join(f"{k}={v}" for k, v in sorted(self.stats.items())))

    # ----------------------------------------------------------------- rebalance callbacks

    def assign(self, consumer: Any, partitions: list[Any]) -> None:
        """Partitions added to this worker."""
        for tp in partitions:
            self._trackers.setdefault(_key(tp), OffsetTracker())
        log.info("sink.assigned partitions=%s", [_key(tp) for tp in partitions])

    def revoke(self, consumer: Any, partitions: list[Any]) -> None:
        """Partitions taken away: flush what can go now, commit, forget them."""
        keys = [_key(tp) for tp in partitions if _key(tp) in self._trackers]
        try:
            if not self._closing and self._in_flight is None and self._fatal is None:
                for key in keys:
                    self._flush_without_waiting(key)
            self._commit(keys)
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
        self._awaiting = [(k, o) for k, o in self._awaiting if k not in keys]

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
                raise KafkaException(error)
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

    def idle(self, seconds: float) -> None:
        """The sink's ``sleep``: pause the partitions, keep polling, resume."""
        if self._no_wait:
            raise SinkInterrupted("no waiting inside a rebalance callback")
        deadline = self._clock() + seconds
        paused = [TopicPartition(t, p) for t, p in self._trackers if (t, p) not in self._paused]
        if paused:
            self._consumer.pause(paused)
        try:
            while True:
                self._check_interrupt()
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
        self._producer.produce(**args, on_delivery=self._on_delivery)
        self._producer.poll(0)
        self._awaiting.append(((s.topic, s.partition), s.offset))
        self.stats["dead_lettered"] += 1
        self._metrics.dead_letter(s.topic, letter.reason)
        self._metrics.records_out(self._dlq_topic)

    def _on_delivery(self, error: Any, _message: Any) -> None:
        if error is not None:
            self._delivery_errors.append(str(error))

    def _settle_dead_letters(self) -> None:
        if not self._awaiting:
            return
        remaining = self._producer.flush(self._dlq_timeout)
        if remaining or self._delivery_errors:
            raise DeadLetterDeliveryError(
                f"the dead-letter topic {self._dlq_topic} did not take {remaining} record(s) "
                f"(errors: {self._delivery_errors[:3]}); offsets are not committed past them"
            )
        for key, offset in self._awaiting:
            tracker = self._trackers.get(key)
            if tracker is not None:
                tracker.finished(offset)
        self._awaiting.clear()

    def commit(self, *, force: bool = False) -> None:
        """Commit every partition's finished prefix (at most every commit interval)."""
        now = self._clock()
        if not force and now < self._next_commit:
            return
        self._next_commit = now + self._commit_interval
        try:
            self._commit(list(self._trackers))
        except KafkaException as exc:  # e.g. a rebalance in progress: the next commit retries
            log.warning("sink.commit_failed error=%s", exc)

    def _commit(self, keys: list[Partition]) -> None:
        self._settle_dead_letters()
        offsets = []
        for key in keys:
            tracker = self._trackers.get(key)
            position = tracker.to_commit() if tracker else None
            if position is not None:
                offsets.append(TopicPartition(key[0], key[1], position))
        if not offsets:
            return
        self._consumer.commit(offsets=offsets, asynchronous=False)
        for tp in offsets:
            self._trackers[_key(tp)].committed = tp.offset
        log.debug("sink.committed offsets=%s", [(tp.partition, tp.offset) for tp in offsets])


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
