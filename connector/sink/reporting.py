"""What the sink tells its watchers: the rate budget left, its backlog and what it waits on.

:class:`BudgetGauge` sets the rate-budget gauge after each request or probe (private-app mode's
one budget; in app mode each HubSpot account's budget is read by the metrics when they are
collected, ``connector.sink.account.budget.*``, registered as its destination is built).
:class:`ProgressReporter` runs at every commit interval: the backlog (lag from locally cached
watermarks, commands held, offsets not yet confirmed, dead letters undelivered) and what the
worker waits on (``dead-letter-delivery``, ``kafka-commit``, ``kafka-fetch``, ``hubspot``, ...).
Waiting on HubSpot's window or day is busy, not stalled.
"""

from __future__ import annotations

from collections.abc import Sized

from connector.sink.budget import RateBudget
from connector.sink.intake import Intake
from connector.telemetry import Metrics
from connector.telemetry.lag import cached_lag


class BudgetGauge:
    """Requests left in the rate budget's window and day, into the gauge."""

    def __init__(self, budget: RateBudget | None, metrics: Metrics) -> None:
        self._budget = budget
        self._metrics = metrics

    def report(self) -> None:
        """Set the gauge from the budget as it is now."""
        budget = self._budget
        if budget is not None and self._metrics.enabled:
            self._metrics.set_rate_budget(window=max(budget.window_limit - budget.used, 0),
                                          daily=budget.daily_remaining)


class ProgressReporter:
    """Tells the intake's progress watch what the worker has to do and what it waits on.

    ``dead_letters``: the undelivered ones; ``parked``: the commands of missing events."""

    def __init__(self, intake: Intake, *, budget: RateBudget | None, dead_letters: Sized,
                 parked: Sized) -> None:
        self._intake = intake
        self._budget = budget
        self._dead_letters = dead_letters
        self._parked = parked

    def report(self) -> None:
        """Report the backlog and what the worker waits on; check the watch."""
        offsets = self._intake.offsets
        held = self._intake.stashed + offsets.unfinished()
        unconfirmed = offsets.unconfirmed()
        lag = cached_lag(self._intake.consumer, offsets.trackers)
        progress = self._intake.progress
        progress.set_backlog(lag=lag, in_hand=held + len(unconfirmed))
        if self._dead_letters:
            progress.waiting_on("dead-letter-delivery")
        elif held and self._budget is not None and self._budget.free() == 0:
            progress.waiting_on("hubspot-rate-budget")
            progress.progressed()  # waiting for HubSpot's window or day is busy, not stalled
        elif held and held == len(self._parked):
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
