"""Errors of dead-letter inspection and redrive.

ConnectorError
└── DeadLetterError                 a dead-letter command cannot do what was asked
    ├── UnknownDeadLetterTopicError the topic does not exist or is not a dead-letter topic
    └── RedriveError                records could not be redriven (nothing sent, or not all)

Each message says what to do next (the CLI prints it as one line and exits 1).
"""

from __future__ import annotations

from connector.errors import ConnectorError


class DeadLetterError(ConnectorError):
    """A dead-letter command cannot do what was asked."""


class UnknownDeadLetterTopicError(DeadLetterError):
    """The topic does not exist or is not a dead-letter topic; the message lists those that do."""


class RedriveError(DeadLetterError):
    """Records could not be redriven: nothing was sent, or the message says what was."""
