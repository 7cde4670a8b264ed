"""Errors of `connector replay`: each names what exists or what to do instead.

ConnectorError (connector.errors)
└── ReplayError                 a replay or backfill cannot be done as asked (exit 1)
    ├── UnknownGroupError       the consumer group does not exist (lists the groups that do)
    ├── UnknownTopicError       a topic or partition does not exist (lists what does)
    ├── GroupActiveError        the group has members; offsets can only move while it is empty
    └── OffsetCommitError       Kafka refused or did not apply the new offsets

Malformed input (a duration, a datetime, a topic spec, an offsets file) is not an error of this
tree: connector.replay.spec raises SpecError (a ValueError) and the CLI turns it into a usage error
(exit 2) with an example of a valid value.
"""

from __future__ import annotations

from connector.errors import ConnectorError


class ReplayError(ConnectorError):
    """A replay or backfill cannot be done as asked."""


class UnknownGroupError(ReplayError):
    """The consumer group does not exist; the message lists the groups that do."""


class UnknownTopicError(ReplayError):
    """A topic or partition does not exist; the message lists what does."""


class GroupActiveError(ReplayError):
    """The group has active members (listed in the message)."""

    def __init__(self, message: str, members: list[str]):
        super().__init__(message)
        self.members = members


class OffsetCommitError(ReplayError):
    """Kafka refused the new committed offsets, or did not apply them."""
