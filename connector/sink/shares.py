"""Each platform account's share of the commands held: a slow account's surplus stays in Kafka.

The commands the sink holds in memory are bounded (``max_buffered_commands``: beyond it reading
pauses for every partition). One throttled, slow or failing HubSpot account whose commands pile
up would alone fill that bound and stop everybody's reading. So in app mode each platform
account may hold at most ``max_held_per_account`` commands. Beyond that its records are
*skipped*: left in Kafka, not held, from that offset on in that partition — every later record
of the account there too, so each person's commands keep their order. The first skipped offset
stays unfinished, so no commit passes it (a restart reads it again).

Once the account holds half its share or less, each partition it skipped in is sought back to
the first skipped offset and read again (a *rewind*): the account's records from there are
taken as if new; every other record below the partition's read position was handled the first
time and is passed over. Each re-read account remembers the next offset it still has to take, so
a second rewind of the same partition never takes a record twice, and one that seeks back less
far than an unfinished re-read needs is never made (the seek goes to the lowest offset any
re-read account still has to take). The seek purges what the consumer had fetched of the
partition, and the intake drops what it had stashed of it, so nothing past the read position
comes before the re-read reached it.

Memory: an offset per (partition, skipping or re-reading account). Cost: a partition's records
from the first skipped offset are read and decoded again, once per rewind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import Enum

from connector.sink.work import Partition

log = logging.getLogger("connector.sink")


class Decision(Enum):
    """What becomes of a record the account shares look at."""

    TAKE = "take"  # hold it as usual
    FLOOR = "floor"  # skipped, the first of its account in the partition: leave it unfinished
    SKIP = "skip"  # skipped behind a floor: finished as far as commits go


class AccountShares:
    """Which records of which accounts are skipped, and when a partition is read again.

    ``held_by``: commands held of a platform account. ``rewind``: seek a partition back to an
    offset (the intake drops what it stashed of it; False: refused, tried again at the next
    release). ``max_held``: an account's share."""

    def __init__(self, max_held: int, held_by: Callable[[str], int],
                 rewind: Callable[[Partition, int], bool]) -> None:
        if max_held < 1:
            raise ValueError("max_held must be >= 1")
        self.max_held = max_held
        self._resume_at = max_held // 2
        self._held_by = held_by
        self._rewind = rewind
        #: The first skipped offset of each skipping account, per partition.
        self._skipping: dict[Partition, dict[str, int]] = {}
        #: The next offset each re-read account still has to take, per partition being read
        #: again (below its read position).
        self._rereading: dict[Partition, dict[str, int]] = {}

    @property
    def skipping(self) -> int:
        """(partition, account) pairs skipping now."""
        return sum(len(accounts) for accounts in self._skipping.values())

    def rereading(self, key: Partition) -> bool:
        """Whether ``key`` is being read again (records below its read position may come)."""
        return key in self._rereading

    def again(self, key: Partition, account: str | None, offset: int) -> bool:
        """A record below the read position of a partition read again: take it (it is a
        skipped record of a re-read account, not taken yet) or pass over it (handled before)."""
        accounts = self._rereading.get(key)
        if accounts is None or account is None:
            return False
        start = accounts.get(account)
        if start is None or offset < start:
            return False
        accounts[account] = offset + 1
        return True

    def decide(self, key: Partition, account: str, offset: int) -> Decision:
        """Whether a record is held, or skipped (the first of its account: the floor)."""
        accounts = self._skipping.get(key)
        first = accounts.get(account) if accounts is not None else None
        if first is not None and offset >= first:
            return Decision.SKIP
        if self._held_by(account) < self.max_held:
            return Decision.TAKE
        self._skipping.setdefault(key, {})[account] = offset
        rereading = self._rereading.get(key)
        if rereading is not None:
            rereading.pop(account, None)  # what it still had to take is skipped again
        log.info("sink.account_share_full account=%s partition=%s offset=%s max_held=%s",
                 account, key, offset, self.max_held)
        return Decision.FLOOR

    def release(self) -> None:
        """Rewind the partitions of accounts that hold half their share or less."""
        for key in list(self._skipping):
            accounts = self._skipping[key]
            released = {a: o for a, o in accounts.items()
                        if self._held_by(a) <= self._resume_at}
            if not released:
                continue
            rereading = self._rereading.get(key, {})
            # an earlier re-read not yet done reads on from where it is
            offset = min([*released.values(), *rereading.values()])
            if not self._rewind(key, offset):
                continue  # still skipping: the next release tries again
            for account in released:
                del accounts[account]
            if not accounts:
                del self._skipping[key]
            self._rereading.setdefault(key, {}).update(released)
            log.info("sink.account_share_rewind partition=%s offset=%s accounts=%s", key,
                     offset, sorted(released))

    def forget(self, keys: list[Partition]) -> None:
        """Partitions revoked or lost: their next owner reads from the committed offset."""
        for key in keys:
            self._skipping.pop(key, None)
            self._rereading.pop(key, None)
