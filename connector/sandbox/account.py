"""One HubSpot account at run time: its own store (events, contacts, participations, lists) and
its participation-counter cache. Every account is isolated from the others."""

from __future__ import annotations

from pathlib import Path

from connector.sandbox.attendance import Counters, count, is_event_over
from connector.sandbox.directory import AccountConfig
from connector.sandbox.models import EventRecord
from connector.sandbox.store import SandboxStore

#: Distance between the object ids of consecutive accounts (the n-th account's first event is
#: 555000000001 + n x ID_STRIDE): ids stay unique across accounts, as HubSpot's are.
ID_STRIDE = 1_000_000_000


def account_persist_path(base: Path | None, hub_id: int, *, is_default: bool) -> Path | None:
    """The SQLite file of one account: `base` itself for the default account (so files written
    before accounts existed still load), `<stem>-hub<hubId><suffix>` beside it for the others."""
    if base is None or is_default:
        return base
    return base.with_name(f"{base.stem}-hub{hub_id}{base.suffix}")


class Account:
    """The state of one account (portal)."""

    def __init__(
        self, config: AccountConfig, persist_path: Path | None, *, id_offset: int = 0
    ) -> None:
        self.config = config
        self.hub_id = config.hub_id
        self.store = SandboxStore(persist_path, id_offset=id_offset)
        self._counter_cache: dict[str, tuple[tuple[int, bool], Counters]] = {}

    def counters_of(self, event: EventRecord, now_ms: int) -> Counters:
        """Participation counters of one event at `now_ms` (cached until its participations
        change or it crosses its end)."""
        key = (
            self.store.participation_versions.get(event.object_id, 0),
            is_event_over(event, now_ms),
        )
        cached = self._counter_cache.get(event.object_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        counters = count(
            self.store.participations_of_event_unordered(event.object_id), event, now_ms
        )
        self._counter_cache[event.object_id] = (key, counters)
        return counters

    def reset(self) -> None:
        """Forget every record (persisted ones too)."""
        self.store.reset()
        self._counter_cache.clear()

    def close(self) -> None:
        """Flush and close persistence."""
        self.store.close()
