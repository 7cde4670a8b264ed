"""Whose dead letter it is: the platform account that `connector dlq --account` selects by.

The `connector.errors.account` header says so when the stage that dead-lettered the record knew
the account (DeadLetter.account). Otherwise, and for dead letters written before that header
existed, the original value is decoded with its source topic's framing and schema, as `show`
decodes it (ValueRenderer), and the account read from the datum: a command's
`externalAccountId`, a platform activity's or webinar's `accountId`. A value that does not
decode has no account: an --account filter never selects it, and the commands count it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from connector.config import Settings
from connector.dlq.inspect import ValueRenderer, dlq_source
from connector.dlq.record import DeadLetterRecord
from connector.serde.record import Decoded
from connector.serde.topic import registry_from

#: Where each kind of record names the platform account: commands (schemas/connector) first,
#: then the platform's activity and webinar records (schemas/platform).
ACCOUNT_FIELDS = ("externalAccountId", "accountId")


def account_of_datum(datum: Any) -> str | None:
    """The platform account a decoded command, activity or webinar names (None: none)."""
    if isinstance(datum, dict):
        for name in ACCOUNT_FIELDS:
            value = datum.get(name)
            if isinstance(value, str) and value:
                return value
    return None


class AccountResolver:
    """A dead letter's platform account: its header, else its decoded value (None: unknown).

    `source_of` names the topic a dead letter failed on (its `__connect.errors.topic` header,
    else the one its dead-letter topic is named after). Raises ConnectorError when decoding needs
    the schema registry and it does not answer: an unreachable registry is not an account-less
    record.
    """

    def __init__(self, renderer: ValueRenderer, settings: Settings):
        self._renderer = renderer
        self._settings = settings

    def __call__(self, record: DeadLetterRecord) -> str | None:
        header = record.account_header
        if header is not None:
            return header
        source = record.source_topic or dlq_source(record.topic, self._settings)
        result = self._renderer.decode(record, source)
        return account_of_datum(result.value) if isinstance(result, Decoded) else None


@contextlib.contextmanager
def account_lookup(settings: Settings) -> Iterator[AccountResolver]:
    """An AccountResolver over the configured formats; its registry client closed at the end."""
    registry = registry_from(settings.serde)
    try:
        yield AccountResolver(ValueRenderer.from_settings(settings, registry), settings)
    finally:
        if registry is not None:
            registry.close()
