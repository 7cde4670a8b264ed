"""Applying work items to HubSpot: requests under the rate budget and the retry policy.

Knows nothing about Kafka. :meth:`Applier.execute` returns an :class:`Outcome`: commands
applied, commands that failed for good (:class:`Failure` values, dead-lettered by the worker)
and commands whose event does not exist (yet) in HubSpot, which the worker parks. A 401/403
raises :class:`HubSpotAccessError`; an interrupted wait raises :class:`SinkInterrupted`.

Event commands use ``PUT /events/{externalEventId}`` (#2) rather than batch upsert (#12): events
are a handful per webinar against hundreds of attendance inputs, and #2 answers with the objectId
of exactly that event and fails exactly that command, so nothing has to be matched back. The
objectId is cached per (externalAccountId, externalEventId); a cache miss is one
``GET /events/{externalEventId}?externalAccountId=`` (#3).

A whole-request 400 on an attendance batch is split in halves until the bad input is alone, so
only that command is dead-lettered (HubSpot validates whole bodies before it applies any input).

List associations (``hubspot.list_associations``): after an EventUpsert succeeded, the lists
configured for its event are linked with ``PUT /associations/{objectId}/lists/{listId}`` (#30),
each (objectId, list) once per process (successes are cached; a restart re-sends them, which is
idempotent). They go through the same rate budget and retry policy as every request: 429/5xx and
network failures are retried within the budget, 401/403 stop the worker (the upsert is then not
committed and is replayed). A list that fails for good (404 unknown list, 400, retries
exhausted) dead-letters the *upsert command* with reason ``list-association-failed`` and the
failed list ids — the event itself is upserted, its objectId cached and parked attendance
released, and the other lists are still linked. Re-driving that dead letter re-sends the
(idempotent) upsert and retries the association, which is what an operator wants once the list
exists or the mapping is fixed; logging and moving on would hide a mapping error for good.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from connector.dlq import DeadLetter, Stage
from connector.hubspot import (
    HubSpotClient,
    HubSpotError,
    HubSpotHTTPError,
    MarketingEventEmailSubscriber,
    MarketingEventSubscriber,
    RateLimitedError,
    Response,
    StandardError,
    UnexpectedResponseError,
    ValidationError,
)
from connector.hubspot.redact import mask_emails
from connector.normalize.command import EventCancel, EventComplete, EventUpsert
from connector.sink.batch import AttendanceBatch, EventWork, Pending, Work
from connector.sink.budget import RateBudget
from connector.sink.errors import HubSpotAccessError
from connector.sink.request import (
    EventKey,
    IdentifierKind,
    ListTargets,
    attendance_of,
    event_params,
    instant,
    subject_of,
    subscriber,
)
from connector.sink.retry import Disposition, RetryPolicy, classify

T = TypeVar("T")
log = logging.getLogger("connector.sink")

COMPONENT = "connector.sink.SinkWorker"


class Reason:
    """Machine words for ``connector.errors.reason``."""

    REJECTED = "hubspot-rejected"
    INPUT_REJECTED = "hubspot-rejected-input"
    RETRIES_EXHAUSTED = "retry-budget-exhausted"
    EVENT_NOT_FOUND = "event-not-found"
    UNEXPECTED_RESPONSE = "unexpected-response"
    INVALID_COMMAND = "invalid-command"
    UNDECODABLE = "undecodable"
    LIST_ASSOCIATION_FAILED = "list-association-failed"


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True, slots=True)
class Failure:
    """A command that failed for good, with what its dead letter must say."""

    pending: Pending
    reason: str
    message: str
    exception_class: str | None = None
    http_status: int | None = None
    category: str | None = None
    correlation_id: str | None = None
    stage: str = Stage.SINK

    @classmethod
    def from_error(cls, pending: Pending, reason: str, error: BaseException) -> Failure:
        """From a raised error (HTTP details when it has them)."""
        http = error if isinstance(error, HubSpotHTTPError) else None
        status = getattr(error, "status", None)
        return cls(
            pending,
            reason,
            mask_emails(str(error)),
            _qualified(type(error)),
            status if isinstance(status, int) else None,
            http.category if http else None,
            http.correlation_id if http else None,
        )

    def dead_letter(self) -> DeadLetter:
        """The dead-letter envelope of the original record."""
        p = self.pending
        return DeadLetter(
            source=p.source,
            stage=self.stage,
            reason=self.reason,
            message=self.message,
            component=COMPONENT,
            exception_class=self.exception_class,
            http_status=self.http_status,
            category=self.category,
            correlation_id=self.correlation_id,
            attempts=p.attempts,
            first_failure_ms=p.first_failure_ms,
            last_failure_ms=p.last_failure_ms,
        )


@dataclass
class Outcome:
    """What one work item did: per-command results, never exceptions."""

    applied: list[Pending] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    missing: list[Pending] = field(default_factory=list)
    events_found: list[EventKey] = field(default_factory=list)

    def merge(self, other: Outcome) -> Outcome:
        self.applied += other.applied
        self.failed += other.failed
        self.missing += other.missing
        self.events_found += other.events_found
        return self


def _reason(error: BaseException) -> str:
    if isinstance(error, UnexpectedResponseError):
        return Reason.UNEXPECTED_RESPONSE
    if classify(error) is Disposition.RETRY:
        return Reason.RETRIES_EXHAUSTED
    return Reason.REJECTED


class Applier:
    """Sends work items to HubSpot through one client, one rate budget and one retry policy."""

    def __init__(
        self,
        client: HubSpotClient,
        *,
        budget: RateBudget,
        policy: RetryPolicy,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        lists: ListTargets | None = None,
    ) -> None:
        self._client = client
        self._budget = budget
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self._lists = lists or ListTargets()
        self._associated: set[tuple[str, str]] = set()
        self._object_ids: dict[EventKey, str] = {}
        self.requests = 0
        self.last_lookup_error: HubSpotError | None = None

    # ----------------------------------------------------------------- objectId cache

    def object_id(self, event: EventKey) -> str | None:
        """The cached objectId of an event."""
        return self._object_ids.get(event)

    def remember(self, event: EventKey, object_id: str | None) -> None:
        """Cache an objectId learned from a response."""
        if object_id:
            self._object_ids[event] = object_id

    def forget(self, event: EventKey) -> None:
        """Drop a cached objectId (HubSpot said it no longer exists)."""
        self._object_ids.pop(event, None)

    # ----------------------------------------------------------------- one request

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _send(self, fn: Callable[[], Response[T]], items: Sequence[Pending],
              waited: list[float]) -> Response[T]:
        """One request under the rate budget; a daily 429 waits for the reset, uncharged."""
        while True:
            delay = self._budget.reserve()
            if delay > 0:
                started = self._clock()
                log.debug("sink.rate_wait seconds=%.3f", delay)
                self._sleep(delay)
                waited[0] += self._clock() - started
                continue
            self.requests += 1
            try:
                response = fn()
            except HubSpotHTTPError as exc:
                self._budget.settle(exc.rate_limit,
                                    admitted=not isinstance(exc, RateLimitedError))
                if classify(exc) is Disposition.FATAL:
                    raise HubSpotAccessError.from_http_error(exc) from exc
                if isinstance(exc, RateLimitedError) and exc.is_daily:
                    log.warning("sink.daily_limit correlation_id=%s", exc.correlation_id)
                    self._budget.daily_exhausted()
                    now_ms = self._now_ms()
                    for p in items:
                        p.failed(now_ms)
                    continue
                raise
            except HubSpotError:
                self._budget.settle(None)
                raise
            self._budget.settle(response.rate_limit)
            return response

    def _call(self, fn: Callable[[], Response[T]], items: Sequence[Pending]) -> Response[T]:
        """One request with retries for what can succeed later (the last error is raised)."""
        waited = [0.0]
        failures = [p.first_failure_ms for p in items if p.first_failure_ms is not None]

        def on_failure(error: HubSpotError) -> None:
            now_ms = self._now_ms()
            for p in items:
                p.failed(now_ms)

        return self._policy.run(
            lambda: self._send(fn, items, waited),
            origin=min(failures) / 1000 if failures else None,
            excluded=lambda: waited[0],
            on_failure=on_failure,
        )

    # ----------------------------------------------------------------- work items

    def execute(self, work: Work) -> Outcome:
        """Apply one work item; every command ends applied, failed or missing."""
        if isinstance(work, EventWork):
            return self._event(work.pending)
        return self._attendance(work)

    def lookup(self, event: EventKey, items: Sequence[Pending] = ()) -> str | None:
        """The event's objectId: cached, or one GET by external IDs (None when not found or
        when the request failed; raises only for 401/403 and interrupted waits)."""
        cached = self._object_ids.get(event)
        if cached:
            return cached
        try:
            response = self._send(
                lambda: self._client.get_event(
                    external_account_id=event.account, external_event_id=event.event
                ),
                items,
                [0.0],
            )
        except HubSpotError as exc:
            log.info("sink.event_lookup_failed event=%s status=%s", event.event,
                     getattr(exc, "status", None))
            self.last_lookup_error = exc
            return None
        self.remember(event, response.value.object_id)
        return response.value.object_id

    def _event(self, pending: Pending) -> Outcome:
        command = pending.command
        body = command.body
        event = pending.event
        outcome = Outcome()
        try:
            if isinstance(body, EventUpsert):
                params = event_params(command)
                upserted = self._call(lambda: self._client.upsert_event(params), [pending])
                object_id = upserted.value.object_id
            elif isinstance(body, EventComplete):
                start, end = instant(body.startDateTime), instant(body.endDateTime)
                completed = self._call(
                    lambda: self._client.complete_event(
                        external_account_id=event.account,
                        external_event_id=event.event,
                        start_date_time=start,
                        end_date_time=end,
                    ),
                    [pending],
                )
                object_id = completed.value.object_id
            elif isinstance(body, EventCancel):
                cancelled = self._call(
                    lambda: self._client.cancel_event(
                        external_account_id=event.account, external_event_id=event.event
                    ),
                    [pending],
                )
                object_id = cancelled.value.object_id
            else:
                raise ValueError(f"{command.kind} is not an event command")
        except HubSpotError as exc:
            if classify(exc) is Disposition.EVENT_MISSING and not isinstance(body, EventUpsert):
                self.forget(event)
                outcome.missing.append(pending)
            else:
                outcome.failed.append(Failure.from_error(pending, _reason(exc), exc))
            return outcome
        except ValueError as exc:  # a command no request can express
            outcome.failed.append(Failure.from_error(pending, Reason.INVALID_COMMAND, exc))
            return outcome
        self.remember(event, object_id)
        if object_id:
            outcome.events_found.append(event)
        failure = (self._associate_lists(pending, object_id)
                   if object_id and isinstance(body, EventUpsert) else None)
        if failure is None:
            outcome.applied.append(pending)
        else:
            outcome.failed.append(failure)
        return outcome

    # ----------------------------------------------------------------- list associations

    def is_associated(self, object_id: str, list_id: str) -> bool:
        """This process linked the event to the list already."""
        return (object_id, list_id) in self._associated

    def _associate_lists(self, pending: Pending, object_id: str) -> Failure | None:
        """Link the event to its configured lists; a Failure naming the lists that failed."""
        failed: list[tuple[str, HubSpotError]] = []
        for list_id in self._lists.lists_for(pending.event):
            if (object_id, list_id) in self._associated:
                continue
            try:
                self._call(functools.partial(self._client.associate_list, object_id, list_id),
                           [pending])
            except HubSpotError as exc:
                log.warning("sink.list_association_failed event=%s object_id=%s list_id=%s "
                            "status=%s category=%s", pending.event.event, object_id, list_id,
                            getattr(exc, "status", None), getattr(exc, "category", None))
                failed.append((list_id, exc))
                continue
            self._associated.add((object_id, list_id))
            log.info("sink.list_associated event=%s object_id=%s list_id=%s",
                     pending.event.event, object_id, list_id)
        if not failed:
            return None
        list_ids = ", ".join(list_id for list_id, _ in failed)
        first = failed[0][1]
        upserted = Failure.from_error(pending, Reason.LIST_ASSOCIATION_FAILED, first)
        message = (f"event upserted (objectId={object_id}) but not associated with HubSpot "
                   f"list(s) {list_ids}: {upserted.message}")
        return replace(upserted, message=message)

    def _attendance(self, batch: AttendanceBatch) -> Outcome:
        event = batch.event
        object_id = self._object_ids.get(event)
        if object_id is None:
            try:
                found = self._call(
                    lambda: self._client.get_event(
                        external_account_id=event.account, external_event_id=event.event
                    ),
                    batch.items,
                )
            except HubSpotError as exc:
                if classify(exc) is Disposition.EVENT_MISSING:
                    return Outcome(missing=list(batch.items))
                return Outcome(failed=[Failure.from_error(p, _reason(exc), exc)
                                       for p in batch.items])
            object_id = found.value.object_id
            if not object_id:
                return Outcome(missing=list(batch.items))
            self.remember(event, object_id)
        return self._record(object_id, batch, list(batch.items))

    def _record(self, object_id: str, batch: AttendanceBatch, items: list[Pending]) -> Outcome:
        state = batch.key.state
        inputs = [subscriber(attendance_of(p.command)) for p in items]  # type: ignore[arg-type]
        fn: Callable[[], Response[Any]]
        if batch.key.kind is IdentifierKind.VID:
            by_vid = [s for s in inputs if isinstance(s, MarketingEventSubscriber)]
            fn = lambda: self._client.record_attendance(object_id, state, by_vid)  # noqa: E731
        else:
            by_email = [s for s in inputs if isinstance(s, MarketingEventEmailSubscriber)]
            fn = lambda: self._client.record_attendance_by_email(  # noqa: E731
                object_id, state, by_email
            )
        try:
            response: Response[Any] = self._call(fn, items)
        except ValidationError as exc:
            if len(items) > 1:  # find the bad input: halves until it is alone
                half = len(items) // 2
                return self._record(object_id, batch, items[:half]).merge(
                    self._record(object_id, batch, items[half:])
                )
            return Outcome(failed=[Failure.from_error(items[0], Reason.REJECTED, exc)])
        except HubSpotError as exc:
            if classify(exc) is Disposition.EVENT_MISSING:
                self.forget(batch.event)
                return Outcome(missing=items)
            return Outcome(failed=[Failure.from_error(p, _reason(exc), exc) for p in items])
        return self._per_input(response, items)

    def _per_input(self, response: Response[Any], items: list[Pending]) -> Outcome:
        """Split a batch answer: inputs named by ``errors[]`` failed, the rest were applied."""
        result = response.value
        by_subject = {subject_of(attendance_of(p.command)): p for p in items}  # type: ignore[arg-type]
        failed: dict[int, Failure] = {}
        unmatched: list[StandardError] = []
        for error in result.errors:
            subjects = [s.strip().lower() for s in error.subject_ids()]
            hits = [by_subject[s] for s in subjects if s in by_subject]
            if not hits:
                unmatched.append(error)
            for p in hits:
                failed[id(p)] = self._input_failure(p, error, response)
        if unmatched:  # errors that name no input: blame inputs absent from the results
            confirmed = {str(getattr(r, "vid", "") or "") for r in result.results}
            confirmed |= {(getattr(r, "email", "") or "").strip().lower() for r in result.results}
            for subject, p in by_subject.items():
                if id(p) not in failed and subject not in confirmed:
                    failed[id(p)] = self._input_failure(p, unmatched[0], response)
        outcome = Outcome()
        now_ms = self._now_ms()
        for p in items:
            if id(p) in failed:
                p.failed(now_ms)
                outcome.failed.append(failed[id(p)])
            else:
                outcome.applied.append(p)
        return outcome

    @staticmethod
    def _input_failure(p: Pending, error: StandardError, response: Response[Any]) -> Failure:
        return Failure(
            p,
            Reason.INPUT_REJECTED,
            mask_emails(error.message or "input rejected"),
            _qualified(StandardError),
            response.status,
            error.category,
            response.correlation_id,
        )
