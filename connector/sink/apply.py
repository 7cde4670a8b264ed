"""Applying work items to HubSpot: one request per work item, under the rate budget and retries.

Knows nothing about Kafka. :meth:`Applier.execute` returns an
:class:`~connector.sink.outcome.ApplyOutcome`: commands applied, commands that failed for good
(:class:`~connector.sink.outcome.CommandFailure` values, dead-lettered by the worker) and
commands whose event does not exist (yet) in HubSpot, which the worker parks. A 401/403 raises
:class:`~connector.sink.errors.HubSpotAccessError`; an interrupted wait raises
:class:`~connector.sink.errors.SinkInterrupted`.

Event commands use ``PUT /events/{externalEventId}`` (#2) rather than batch upsert (#12): events
are a handful per webinar against hundreds of attendance inputs, and #2 answers with the objectId
of exactly that event and fails exactly that command, so nothing has to be matched back. The
objectId is cached per (externalAccountId, externalEventId); a cache miss is one
``GET /events/{externalEventId}?externalAccountId=`` (#3).

A whole-request 400 on an attendance batch is split in halves until the bad input is alone, so
only that command is dead-lettered (HubSpot validates whole bodies before it applies any input).
An upserted event joins its configured lists (:mod:`connector.sink.lists`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from connector.clock import Clock
from connector.hubspot import (
    HubSpotClient,
    HubSpotError,
    MarketingEventEmailSubscriber,
    MarketingEventSubscriber,
    Response,
    ValidationError,
    WireInputs,
)
from connector.installs import InstallError
from connector.normalize.command import EventCancel, EventComplete, EventUpsert
from connector.sink.budget import RateBudget
from connector.sink.flight import Flight
from connector.sink.lists import ListAssociator
from connector.sink.outcome import (
    ApplyOutcome,
    CommandFailure,
    Reason,
    install_reason,
    reason_for,
    split_batch_answer,
)
from connector.sink.request import (
    EventKey,
    IdentifierKind,
    ListTargets,
    attendance_inputs,
    attendance_of,
    event_params,
    instant,
)
from connector.sink.retry import Disposition, RetryPolicy, classify
from connector.sink.send import RequestSender
from connector.sink.work import AttendanceBatch, EventWork, PendingCommand, Work
from connector.telemetry import NOOP_METRICS, Metrics

log = logging.getLogger("connector.sink")


class Applier:
    """Sends work items to HubSpot through one client, one rate budget and one retry policy.

    ``sleep`` waits for the rate budget (the worker's, which keeps polling Kafka) when a work
    item runs on the consumer's thread; a work item in flight on a pool thread waits its
    :class:`~connector.sink.flight.Flight`'s way. Work items may run on several threads at
    once: the objectId cache is a dict (its reads and writes are atomic), the rest is per call.
    ``on_latency`` receives each answer's round trip. ``account`` and ``metrics``: the HubSpot
    account's key and where its 429s count (app mode; see
    :class:`~connector.sink.send.RequestSender`)."""

    def __init__(
        self,
        client: HubSpotClient,
        *,
        budget: RateBudget,
        policy: RetryPolicy,
        clock: Clock,
        sleep: Callable[[float], None],
        lists: ListTargets | None = None,
        on_latency: Callable[[float], None] = lambda _seconds: None,
        access_fatal: bool = True,
        account: str | None = None,
        metrics: Metrics = NOOP_METRICS,
    ) -> None:
        self._client = client
        self._sender = RequestSender(budget=budget, policy=policy, clock=clock, sleep=sleep,
                                     on_latency=on_latency, access_fatal=access_fatal,
                                     account=account, metrics=metrics)
        self._lists = ListAssociator(client, self._sender, lists or ListTargets())
        self._object_ids: dict[EventKey, str] = {}
        self.last_lookup_error: HubSpotError | None = None

    @property
    def requests(self) -> int:
        """Requests sent so far."""
        return self._sender.requests

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

    def is_associated(self, object_id: str, list_id: str) -> bool:
        """This process linked the event to the list already."""
        return self._lists.is_associated(object_id, list_id)

    # ----------------------------------------------------------------- work items

    def execute(self, work: Work, flight: Flight | None = None) -> ApplyOutcome:
        """Apply one work item; every command ends applied, failed or missing. ``flight``:
        its prepaid slot and waits when it is one of several in flight (any thread)."""
        with self._sender.carrying(flight):
            try:
                if isinstance(work, EventWork):
                    return self._event(work.pending)
                return self._attendance(work)
            except InstallError as exc:  # its token could not be had: revoked, unreadable
                reason = install_reason(exc)
                log.warning("sink.install_unusable account=%s reason=%s", work.event.account,
                            reason)
                return ApplyOutcome(failed=[CommandFailure.from_error(p, reason, exc)
                                            for p in work.items])

    def lookup(self, event: EventKey, items: Sequence[PendingCommand] = ()) -> str | None:
        """The event's objectId: cached, or one GET by external IDs (None when not found or
        when the request failed; raises only for 401/403 and interrupted waits)."""
        cached = self._object_ids.get(event)
        if cached:
            return cached
        try:
            response = self._sender.send(lambda: self._get_event(event), items)
        except HubSpotError as exc:
            log.info("sink.event_lookup_failed account=%s event=%s status=%s", event.account,
                     event.event, getattr(exc, "status", None))
            self.last_lookup_error = exc
            return None
        self.remember(event, response.value.object_id)
        return response.value.object_id

    def _get_event(self, event: EventKey) -> Response[Any]:
        return self._client.get_event(external_account_id=event.account,
                                      external_event_id=event.event)

    def _event(self, pending: PendingCommand) -> ApplyOutcome:
        event = pending.event
        upsert = isinstance(pending.command.body, EventUpsert)
        outcome = ApplyOutcome()
        try:
            request = self._event_request(pending)
            object_id = self._sender.call(request, [pending]).value.object_id
        except HubSpotError as exc:
            if classify(exc) is Disposition.EVENT_MISSING and not upsert:
                self.forget(event)
                outcome.missing.append(pending)
            else:
                outcome.failed.append(CommandFailure.from_error(pending, reason_for(exc), exc))
            return outcome
        except ValueError as exc:  # a command no request can express
            outcome.failed.append(CommandFailure.from_error(pending, Reason.INVALID_COMMAND, exc))
            return outcome
        self.remember(event, object_id)
        if object_id:
            outcome.events_found.append(event)
        failure = self._lists.associate(pending, object_id) if object_id and upsert else None
        if failure is None:
            outcome.applied.append(pending)
        else:
            outcome.failed.append(failure)
        return outcome

    def _event_request(self, pending: PendingCommand) -> Callable[[], Response[Any]]:
        """The request of an event command, its body built before anything is sent
        (ValueError for a command no request expresses)."""
        command, event = pending.command, pending.event
        body = command.body
        if isinstance(body, EventUpsert):
            params = event_params(command)
            return lambda: self._client.upsert_event(params)
        if isinstance(body, EventComplete):
            start, end = instant(body.startDateTime), instant(body.endDateTime)
            return lambda: self._client.complete_event(
                external_account_id=event.account, external_event_id=event.event,
                start_date_time=start, end_date_time=end)
        if isinstance(body, EventCancel):
            return lambda: self._client.cancel_event(external_account_id=event.account,
                                                     external_event_id=event.event)
        raise ValueError(f"{command.kind} is not an event command")

    def _attendance(self, batch: AttendanceBatch) -> ApplyOutcome:
        event = batch.event
        object_id = self._object_ids.get(event)
        if object_id is None:
            try:
                found = self._sender.call(lambda: self._get_event(event), batch.items)
            except HubSpotError as exc:
                if classify(exc) is Disposition.EVENT_MISSING:
                    return ApplyOutcome(missing=list(batch.items))
                return ApplyOutcome(failed=[CommandFailure.from_error(p, reason_for(exc), exc)
                                            for p in batch.items])
            object_id = found.value.object_id
            if not object_id:
                return ApplyOutcome(missing=list(batch.items))
            self.remember(event, object_id)
        return self._record(object_id, batch, list(batch.items))

    def _record(self, object_id: str, batch: AttendanceBatch,
                items: list[PendingCommand]) -> ApplyOutcome:
        request = self._record_request(object_id, batch, items)
        try:
            response = self._sender.call(request, items)
        except ValidationError as exc:
            if len(items) > 1:  # find the bad input: halves until it is alone
                half = len(items) // 2
                return self._record(object_id, batch, items[:half]).merge(
                    self._record(object_id, batch, items[half:])
                )
            return ApplyOutcome(failed=[CommandFailure.from_error(items[0], Reason.REJECTED,
                                                                  exc)])
        except HubSpotError as exc:
            if classify(exc) is Disposition.EVENT_MISSING:
                self.forget(batch.event)
                return ApplyOutcome(missing=items)
            return ApplyOutcome(failed=[CommandFailure.from_error(p, reason_for(exc), exc)
                                        for p in items])
        return split_batch_answer(response, items, self._sender.now_ms())

    def _record_request(self, object_id: str, batch: AttendanceBatch,
                        items: list[PendingCommand]) -> Callable[[], Response[Any]]:
        """One attendance request, by contact id or by email as the batch's group says (its
        inputs built before anything is sent)."""
        state = batch.key.state
        inputs = attendance_inputs(attendance_of(p.command) for p in items)  # type: ignore[misc]
        if isinstance(inputs, WireInputs):  # one group: one kind of identifier
            if batch.key.kind is IdentifierKind.VID:
                return lambda: self._client.record_attendance(object_id, state, inputs)
            return lambda: self._client.record_attendance_by_email(object_id, state, inputs)
        if batch.key.kind is IdentifierKind.VID:
            by_vid = [s for s in inputs if isinstance(s, MarketingEventSubscriber)]
            return lambda: self._client.record_attendance(object_id, state, by_vid)
        by_email = [s for s in inputs if isinstance(s, MarketingEventEmailSubscriber)]
        return lambda: self._client.record_attendance_by_email(object_id, state, by_email)
