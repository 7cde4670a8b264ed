"""Commands whose event does not exist (yet) in HubSpot: parked, probed, released or expired.

When a work item finds its event missing, its commands and every later held command of that
event (except upserts, which may create it) are parked in the
:class:`~connector.sink.park.ParkingLot`. Due events are probed (one GET each, under the rate
budget); an event found — by a probe or by an upsert that succeeded — is released and its
commands go back to the batcher in order. An event still missing after the retry budget
dead-letters every parked command as ``event-not-found``. An event whose platform account lost
its install meanwhile (app mode: revoked, uninstalled) is not probed: its parked commands are
dead-lettered at its next probe with the install's reason, as a command read then would be, so
they never hold their partition's commits back for the retry budget.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from connector.hubspot.errors import HubSpotHTTPError, NotFoundError
from connector.installs import NoRoute
from connector.sink.apply import Applier
from connector.sink.batch import Batcher
from connector.sink.dead_letters import DeadLetters
from connector.sink.offsets import AssignedOffsets
from connector.sink.outcome import CommandFailure, Reason, qualified
from connector.sink.park import ParkingLot
from connector.sink.reporting import BudgetGauge
from connector.sink.request import EventKey, is_event_upsert
from connector.sink.work import PendingCommand
from connector.telemetry import Tracing
from connector.telemetry.progress import ProgressWatch

log = logging.getLogger("connector.sink")


class MissingEvents:
    """Parks the commands of missing events, probes for the events, releases or expires them."""

    def __init__(self, parking: ParkingLot, *, batcher: Batcher,
                 applier: Callable[[EventKey], Applier | NoRoute],
                 offsets: AssignedOffsets, dead_letters: DeadLetters, tracing: Tracing,
                 gauge: BudgetGauge, progress: ProgressWatch, stats: Counter[str]) -> None:
        self.parking = parking
        self._batcher = batcher
        self._applier = applier
        self._offsets = offsets
        self._dead_letters = dead_letters
        self._tracing = tracing
        self._gauge = gauge
        self._progress = progress
        self._stats = stats

    def __contains__(self, event: object) -> bool:
        return event in self.parking

    def __len__(self) -> int:
        """Parked commands."""
        return len(self.parking)

    def park(self, missing: list[PendingCommand]) -> None:
        """Park commands whose event was not found, with the held ones of the same events."""
        events = list(dict.fromkeys(p.event for p in missing))
        later = [p for event in events for p in self._batcher.extract_event(event)]
        self.parking.park(missing + later)
        self._stats["parked"] += len(missing) + len(later)
        for event in events:
            log.info("sink.event_missing event=%s account=%s parked=%s",
                     event.event, event.account, len(missing) + len(later))

    def admit(self, pending: PendingCommand) -> None:
        """A command goes to the batcher, unless its event is parked and it cannot create it
        (then it joins the parking); one no group takes is dead-lettered."""
        if pending.event in self.parking and not is_event_upsert(pending.command):
            self.parking.add(pending)
            return
        try:
            self._batcher.add(pending)
        except ValueError as exc:
            failure = CommandFailure.from_error(pending, Reason.INVALID_COMMAND, exc)
            self._dead_letters.send(failure.dead_letter())

    def release(self, event: EventKey) -> None:
        """The event exists: its parked commands go to the batcher, oldest first."""
        items = self.parking.release(event)
        log.info("sink.event_found event=%s released=%s", event.event, len(items))
        for pending in items:
            self.admit(pending)
        self._batcher.seal_event(event)

    def probe_due(self) -> None:
        """Probe the due events of assigned partitions: release the ones found; dead-letter
        those still missing after the retry budget."""
        for parked in self.parking.due():
            if not parked.items or parked.items[0].partition not in self._offsets:
                continue
            applier = self._applier(parked.event)
            if isinstance(applier, NoRoute):
                self._refuse(parked.event, applier)
                continue
            with self._tracing.sink_batch([p.source for p in parked.items],
                                          operation="get_event"):
                found = applier.lookup(parked.event, parked.items)
            self._gauge.report()
            self._progress.progressed()
            if found:
                self.release(parked.event)
                continue
            self.parking.probed(parked.event, applier.last_lookup_error)
            if self.parking.is_expired(parked.event):
                self._expire(parked.event)

    def _refuse(self, event: EventKey, no_route: NoRoute) -> None:
        items = self.parking.release(event)
        log.info("sink.event_refused event=%s account=%s dead_lettered=%s reason=%s",
                 event.event, event.account, len(items), no_route.reason)
        for pending in items:
            self._dead_letters.send(CommandFailure.no_route(pending, no_route).dead_letter())

    def _expire(self, event: EventKey) -> None:
        error = self.parking.last_error(event)
        items = self.parking.release(event)
        message = (f"marketing event externalAccountId={event.account} "
                   f"externalEventId={event.event} still does not exist in HubSpot after "
                   f"{self.parking.budget_seconds:.0f}s (no EventUpsert of it succeeded)")
        http = error if isinstance(error, HubSpotHTTPError) else None
        for pending in items:
            self._dead_letters.send(CommandFailure(
                pending, Reason.EVENT_NOT_FOUND, message, qualified(NotFoundError),
                http.status if http else 404,
                http.category if http else "OBJECT_NOT_FOUND",
                http.correlation_id if http else None,
            ).dead_letter())
