"""What applying a work item did (pure): applied commands, failures for good, missing events.

Per-record failures are values, never exceptions: a :class:`CommandFailure` says what its dead
letter must carry, and its :class:`Reason` goes into the ``connector.errors.reason`` header.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from connector.dlq import DeadLetter, Stage
from connector.hubspot import (
    AuthenticationError,
    HubSpotHTTPError,
    MissingScopesError,
    Response,
    StandardError,
    UnexpectedResponseError,
)
from connector.installs import InstallError, InstallRevoked, InstallUnreadable, NoRoute
from connector.redact import mask_emails
from connector.sink.request import EventKey, attendance_of, subject_of
from connector.sink.retry import Disposition, classify
from connector.sink.work import PendingCommand

#: The ``connector.errors.class.name`` of the sink's dead letters.
COMPONENT = "connector.sink.SinkWorker"


class Reason(StrEnum):
    """Why the sink dead-lettered a command: the ``connector.errors.reason`` header."""

    REJECTED = "hubspot-rejected"
    INPUT_REJECTED = "hubspot-rejected-input"
    RETRIES_EXHAUSTED = "retry-budget-exhausted"
    EVENT_NOT_FOUND = "event-not-found"
    UNEXPECTED_RESPONSE = "unexpected-response"
    INVALID_COMMAND = "invalid-command"
    UNDECODABLE = "undecodable"
    LIST_ASSOCIATION_FAILED = "list-association-failed"
    # The account's HubSpot install (app mode): connector.installs.routing's reasons.
    NO_INSTALL = "no-hubspot-install"
    INSTALL_REVOKED = "hubspot-install-revoked"
    MISSING_SCOPES = "hubspot-missing-scopes"
    INSTALL_UNREADABLE = "hubspot-install-unreadable"


def qualified(cls: type) -> str:
    """A class as ``module.QualifiedName`` (the dead letter's exception class)."""
    return f"{cls.__module__}.{cls.__qualname__}"


def reason_for(error: BaseException) -> Reason:
    """The reason of a request that failed for good (a 401/403 reaches here only when it is
    one account's among many: its install no longer works, or lacks the scopes)."""
    if isinstance(error, UnexpectedResponseError):
        return Reason.UNEXPECTED_RESPONSE
    if isinstance(error, AuthenticationError):
        return Reason.INSTALL_REVOKED
    if isinstance(error, MissingScopesError):
        return Reason.MISSING_SCOPES
    if classify(error) is Disposition.RETRY:
        return Reason.RETRIES_EXHAUSTED
    return Reason.REJECTED


def install_reason(error: InstallError) -> Reason:
    """The reason of commands whose account's token could not be had."""
    if isinstance(error, InstallRevoked):
        return Reason.INSTALL_REVOKED
    if isinstance(error, InstallUnreadable):
        return Reason.INSTALL_UNREADABLE
    return Reason.NO_INSTALL


@dataclass(frozen=True, slots=True)
class CommandFailure:
    """A command that failed for good, with what its dead letter must say."""

    pending: PendingCommand
    reason: Reason
    message: str
    exception_class: str | None = None
    http_status: int | None = None
    category: str | None = None
    correlation_id: str | None = None
    stage: Stage = Stage.SINK

    @classmethod
    def no_route(cls, pending: PendingCommand, no_route: NoRoute) -> CommandFailure:
        """Its platform account has no usable HubSpot install (app mode)."""
        return cls(pending, Reason(no_route.reason), no_route.detail)

    @classmethod
    def from_error(cls, pending: PendingCommand, reason: Reason,
                   error: BaseException) -> CommandFailure:
        """From a raised error (HTTP details when it has them)."""
        http = error if isinstance(error, HubSpotHTTPError) else None
        status = getattr(error, "status", None)
        return cls(
            pending,
            reason,
            mask_emails(str(error)),
            qualified(type(error)),
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
            reason=str(self.reason),
            message=self.message,
            component=COMPONENT,
            exception_class=self.exception_class,
            http_status=self.http_status,
            category=self.category,
            correlation_id=self.correlation_id,
            attempts=p.attempts,
            first_failure_ms=p.first_failure_ms,
            last_failure_ms=p.last_failure_ms,
            account=p.command.externalAccountId,  # `connector dlq --account` reads it
        )


@dataclass
class ApplyOutcome:
    """What one work item did: per-command results, never exceptions."""

    applied: list[PendingCommand] = field(default_factory=list)
    failed: list[CommandFailure] = field(default_factory=list)
    missing: list[PendingCommand] = field(default_factory=list)
    events_found: list[EventKey] = field(default_factory=list)

    def merge(self, other: ApplyOutcome) -> ApplyOutcome:
        """Add another outcome's results to this one."""
        self.applied += other.applied
        self.failed += other.failed
        self.missing += other.missing
        self.events_found += other.events_found
        return self


def split_batch_answer(response: Response[Any], items: list[PendingCommand],
                       now_ms: int) -> ApplyOutcome:
    """Split an attendance batch's answer: inputs named by ``errors[]`` failed, the rest were
    applied. Errors that name no input blame the inputs absent from the results."""
    result = response.value
    by_subject = {subject_of(attendance_of(p.command)): p  # type: ignore[arg-type]
                  for p in items}
    failed: dict[int, CommandFailure] = {}
    unmatched: list[StandardError] = []
    for error in result.errors:
        subjects = [s.strip().lower() for s in error.subject_ids()]
        hits = [by_subject[s] for s in subjects if s in by_subject]
        if not hits:
            unmatched.append(error)
        for p in hits:
            failed[id(p)] = _input_failure(p, error, response)
    if unmatched:
        confirmed = {str(getattr(r, "vid", "") or "") for r in result.results}
        confirmed |= {(getattr(r, "email", "") or "").strip().lower() for r in result.results}
        for subject, p in by_subject.items():
            if id(p) not in failed and subject not in confirmed:
                failed[id(p)] = _input_failure(p, unmatched[0], response)
    outcome = ApplyOutcome()
    for p in items:
        if id(p) in failed:
            p.failed(now_ms)
            outcome.failed.append(failed[id(p)])
        else:
            outcome.applied.append(p)
    return outcome


def _input_failure(p: PendingCommand, error: StandardError,
                   response: Response[Any]) -> CommandFailure:
    return CommandFailure(
        p,
        Reason.INPUT_REJECTED,
        mask_emails(error.message or "input rejected"),
        qualified(StandardError),
        response.status,
        error.category,
        response.correlation_id,
    )
