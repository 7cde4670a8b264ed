"""The sink: the commands topic into HubSpot's Marketing Events API.

Start from :func:`run_sink` (`connector run sink`) or :class:`SinkWorker`. The pure parts —
:mod:`~connector.sink.batch`, :mod:`~connector.sink.budget`, :mod:`~connector.sink.retry`,
:mod:`~connector.sink.request`, :mod:`~connector.sink.offsets`, :mod:`~connector.sink.park` —
take an injected clock and never sleep.
"""

from connector.sink.apply import Applier, Failure, Outcome, Reason
from connector.sink.batch import AttendanceBatch, Batcher, EventWork, Pending
from connector.sink.budget import RateBudget
from connector.sink.errors import (
    DeadLetterDeliveryError,
    HubSpotAccessError,
    SinkError,
    SinkInterrupted,
)
from connector.sink.retry import Disposition, RetryPolicy, backoff, classify
from connector.sink.worker import SinkWorker

__all__ = [
    "Applier",
    "AttendanceBatch",
    "Batcher",
    "DeadLetterDeliveryError",
    "Disposition",
    "EventWork",
    "Failure",
    "HubSpotAccessError",
    "Outcome",
    "Pending",
    "RateBudget",
    "Reason",
    "RetryPolicy",
    "SinkError",
    "SinkInterrupted",
    "SinkWorker",
    "backoff",
    "classify",
]
