"""The sink: the commands topic into HubSpot's Marketing Events API.

Start from :func:`connector.runtime.sink.run_sink` (`connector run sink`) or assemble a
:class:`SinkWorker` from an :class:`Intake`. The pure parts — :mod:`~connector.sink.work`,
:mod:`~connector.sink.batch`, :mod:`~connector.sink.lanes`, :mod:`~connector.sink.budget`,
:mod:`~connector.sink.retry`, :mod:`~connector.sink.request`, :mod:`~connector.sink.offsets`,
:mod:`~connector.sink.outcome`, :mod:`~connector.sink.park`, :mod:`~connector.sink.persons` —
take an injected clock and never sleep. docs/ARCHITECTURE.md lists every module by its job.
"""

from connector.sink.apply import Applier
from connector.sink.batch import Batcher
from connector.sink.budget import RateBudget
from connector.sink.errors import (
    DeadLetterDeliveryError,
    HubSpotAccessError,
    SinkError,
    SinkInterrupted,
)
from connector.sink.intake import Intake
from connector.sink.options import SinkOptions
from connector.sink.outcome import ApplyOutcome, CommandFailure, Reason
from connector.sink.retry import Disposition, RetryPolicy, backoff, classify
from connector.sink.work import AttendanceBatch, EventWork, PendingCommand, Work
from connector.sink.worker import SinkWorker

__all__ = [
    "Applier",
    "ApplyOutcome",
    "AttendanceBatch",
    "Batcher",
    "CommandFailure",
    "DeadLetterDeliveryError",
    "Disposition",
    "EventWork",
    "HubSpotAccessError",
    "Intake",
    "PendingCommand",
    "RateBudget",
    "Reason",
    "RetryPolicy",
    "SinkError",
    "SinkInterrupted",
    "SinkOptions",
    "SinkWorker",
    "Work",
    "backoff",
    "classify",
]
