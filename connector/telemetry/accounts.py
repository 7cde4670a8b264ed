"""Bounded ``account`` label values: the first N accounts a process sees get a series each.

Per-account metrics (``connector.sink.account.*``, see :mod:`connector.telemetry.metrics`) carry
an ``account`` label: a HubSpot account key (a hub id, or ``private:<hash>`` for a private-app
token; never a token) or a platform account id (``externalAccountId``). A connector serves as
many accounts as customers install it, and every label value is a series a metrics backend
keeps, so the values are bounded: :class:`AccountLabels` gives each of the first ``limit``
distinct accounts its own value (the account itself) and every later one ``"other"``
(:data:`OTHER_ACCOUNTS`), for the life of the process. So a per-account metric has at most
``limit + 1`` series per process (times its other labels' values, e.g. the dead-letter
reasons), whatever the number of accounts. A real account named ``other`` shares that series.

``limit`` is ``CONNECTOR_TELEMETRY__ACCOUNT_SERIES_LIMIT`` (default 100); 0 puts every account
in ``"other"`` (one series: no per-account detail at all). Accounts are not forgotten: an
account that got a series keeps it, so its counters stay cumulative, and the label table holds
at most ``limit`` entries.
"""

from __future__ import annotations

import logging
import threading

#: The label value of every account past the limit.
OTHER_ACCOUNTS = "other"
#: Series per per-account metric when the setting is not given.
DEFAULT_ACCOUNT_SERIES_LIMIT = 100

log = logging.getLogger("connector.telemetry")


class AccountLabels:
    """The ``account`` label value of each account: itself for the first ``limit`` seen, else
    :data:`OTHER_ACCOUNTS` (thread-safe; a known account is answered without a lock)."""

    def __init__(self, limit: int = DEFAULT_ACCOUNT_SERIES_LIMIT, *, kind: str = "account"
                 ) -> None:
        """``kind`` names the accounts in the one log line said when the limit is reached."""
        if limit < 0:
            raise ValueError("the account series limit is 0 or more")
        self.limit = limit
        self._kind = kind
        self._labels: dict[str, str] = {}
        self._lock = threading.Lock()
        self._overflowed = False

    def label(self, account: str) -> str:
        """``account``'s label value (the first call for an account decides it, for good)."""
        label = self._labels.get(account)
        if label is not None:
            return label
        if len(self._labels) >= self.limit:  # the table only grows: full stays full
            self._overflow(account)
            return OTHER_ACCOUNTS
        with self._lock:
            label = self._labels.get(account)
            if label is None:
                if len(self._labels) >= self.limit:
                    self._overflow(account)
                    return OTHER_ACCOUNTS
                label = self._labels[account] = account
        return label

    def __len__(self) -> int:
        """Accounts with a series of their own."""
        return len(self._labels)

    def _overflow(self, account: str) -> None:
        """Say once that accounts are lumped together from now on (an operator raises the
        limit, or reads them from the logs)."""
        if self._overflowed or not self.limit:  # 0: lumped together on purpose
            return
        self._overflowed = True
        log.warning("telemetry.account_series_full kind=%s limit=%s account=%s (this and every "
                    "later %s is reported as account=%s; CONNECTOR_TELEMETRY__ACCOUNT_SERIES_"
                    "LIMIT)", self._kind, self.limit, account, self._kind, OTHER_ACCOUNTS)
