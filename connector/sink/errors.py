"""Errors raised by the sink worker.

ConnectorError
└── SinkError                     root of everything connector.sink raises on purpose
    ├── HubSpotAccessError        401/403: the token or its scopes are wrong; the worker stops
    ├── DeadLetterDeliveryError   the dead-letter producer failed fatally and cannot be rebuilt
    └── SinkInterrupted           a wait was cut short (shutdown, revoke); the work stays unapplied

A broker away while the worker runs raises nothing: commits and dead letters are retried (see
connector.sink.commits and connector.sink.dead_letters); one away at start-up past the wait raises
connector.kafka.admin.KafkaUnavailableError (re-exported here), as for every worker.

Per-record failures are *values* (:class:`connector.sink.outcome.CommandFailure`) that become
dead letters; only what no single record can explain raises.
"""

from __future__ import annotations

from connector.errors import ConnectorError
from connector.hubspot.errors import HubSpotHTTPError, MissingScopesError
from connector.kafka.admin import KafkaUnavailableError  # the sink's at start-up, as every worker's

__all__ = [
    "DeadLetterDeliveryError",
    "HubSpotAccessError",
    "KafkaUnavailableError",
    "SinkError",
    "SinkInterrupted",
]

TOKEN_SETTING = "CONNECTOR_HUBSPOT__ACCESS_TOKEN"
WRITE_SCOPE = "crm.objects.marketing_events.write"


class SinkError(ConnectorError):
    """Root of every error connector.sink raises on purpose."""


class HubSpotAccessError(SinkError):
    """HubSpot refused the app itself (401/403): no record can succeed until an operator acts."""

    def __init__(self, message: str, *, status: int, correlation_id: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.correlation_id = correlation_id

    @classmethod
    def from_http_error(cls, error: HubSpotHTTPError) -> HubSpotAccessError:
        """Say what is wrong and what to change, from a 401 or 403 answer."""
        category = f" {error.category}" if error.category else ""
        where = f"(HTTP {error.status}{category}, correlationId={error.correlation_id})"
        if isinstance(error, MissingScopesError):
            scopes = ", ".join(error.required_scopes) or WRITE_SCOPE
            message = (
                f"HubSpot says the app's token lacks required scopes {where}: grant {scopes} "
                f"to the app (the sink needs {WRITE_SCOPE} and "
                "crm.objects.marketing_events.read) and restart the sink"
            )
        else:
            message = (
                f"HubSpot rejected the access token {where}: it is missing, invalid or expired; "
                f"set {TOKEN_SETTING} to the app's private-app or OAuth access token"
            )
        return cls(message, status=error.status, correlation_id=error.correlation_id)


class DeadLetterDeliveryError(SinkError):
    """The dead-letter producer failed for good; offsets are not committed past the record."""


class SinkInterrupted(SinkError):
    """A wait (backoff or rate budget) was cut short; the work in hand stays unapplied."""
