"""The running sandbox: config, state, limiter, faults, callback fetcher, request log."""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

import httpx

from connector.sandbox.attendance import Counters, count, is_event_over
from connector.sandbox.callback import EventDetailsFetcher
from connector.sandbox.config import AppConfig, SandboxConfig
from connector.sandbox.faults import FaultConfig, FaultInjector
from connector.sandbox.models import EventRecord
from connector.sandbox.ratelimit import RateLimiter
from connector.sandbox.render import EventRenderer
from connector.sandbox.store import SandboxStore
from connector.sandbox.timefmt import ms_from_seconds


class Sandbox:
    """Everything one sandbox instance holds between requests."""

    def __init__(
        self, config: SandboxConfig, *, callback_transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self.store = SandboxStore(config.persist_path)
        self.limiter = RateLimiter(
            window_limit=config.window_limit,
            window_seconds=config.window_seconds,
            daily_limit=config.daily_limit,
            clock=config.clock,
            utc_offset_hours=config.daily_reset_utc_offset_hours,
        )
        self.faults = FaultInjector(config.faults)
        self.fetcher = EventDetailsFetcher(
            transport=callback_transport or config.callback_transport,
            timeout=config.callback_timeout_seconds,
        )
        self.renderer = EventRenderer(
            emit_nulls=config.emit_nulls, app_names={a.app_id: a.name for a in config.apps}
        )
        self.apps_by_token: dict[str, AppConfig] = {a.token: a for a in config.apps}
        self.request_log: deque[dict[str, Any]] = deque(maxlen=config.request_log_size)
        self.callback_log: deque[dict[str, Any]] = deque(maxlen=config.request_log_size)
        self.counters: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.by_operation: Counter[str] = Counter()
        self._seq = 0
        self._counter_cache: dict[str, tuple[tuple[int, bool], Counters]] = {}

    def now(self) -> float:
        """Clock seconds."""
        return self.config.clock()

    def now_ms(self) -> int:
        """Clock epoch milliseconds."""
        return ms_from_seconds(self.config.clock())

    def counters_of(self, event: EventRecord) -> Counters:
        """Participation counters of one event, now (cached until its participations change
        or it crosses its end)."""
        now = self.now_ms()
        key = (
            self.store.participation_versions.get(event.object_id, 0),
            is_event_over(event, now),
        )
        cached = self._counter_cache.get(event.object_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        counters = count(self.store.participations_of_event_unordered(event.object_id), event, now)
        self._counter_cache[event.object_id] = (key, counters)
        return counters

    def set_faults(self, faults: FaultConfig) -> None:
        """Swap the fault configuration (fresh RNG from its seed)."""
        self.faults = FaultInjector(faults)

    def log_request(self, entry: dict[str, Any]) -> None:
        """Record one HubSpot request and bump counters."""
        self._seq += 1
        entry["seq"] = self._seq
        self.request_log.append(entry)
        self.counters["requests"] += 1
        status = entry.get("status")
        self.by_status[str(status)] += 1
        self.by_operation[str(entry.get("operation"))] += 1
        if status == 429:
            self.counters["rate_limited"] += 1
            self.counters[f"rate_limited.{entry.get('policy') or 'unknown'}"] += 1
        if entry.get("fault"):
            self.counters[f"fault.{entry['fault']}"] += 1

    def stats(self) -> dict[str, Any]:
        """Counters for the admin API."""
        return {
            "requests": self.counters["requests"],
            # Applied attendance records (one interaction each): what benchmarks count.
            "interactions": sum(len(p.interactions) for p in self.store.participations.values()),
            "rateLimited": self.counters["rate_limited"],
            "rateLimitedByPolicy": {
                k.split(".", 1)[1]: v
                for k, v in self.counters.items()
                if k.startswith("rate_limited.")
            },
            "faults": {
                k.split(".", 1)[1]: v for k, v in self.counters.items() if k.startswith("fault.")
            },
            "batchInputFailures": self.faults.injected.get("batch_input", 0),
            "byStatus": dict(self.by_status),
            "byOperation": dict(self.by_operation),
            "callbacks": len(self.callback_log),
        }

    def reset(self, *, state: bool = True, logs: bool = True, limits: bool = True) -> None:
        """Clear state, logs/counters and rate-limit budgets."""
        if state:
            self.store.reset()
            self._counter_cache.clear()
        if logs:
            self.request_log.clear()
            self.callback_log.clear()
            self.counters.clear()
            self.by_status.clear()
            self.by_operation.clear()
        if limits:
            self.limiter.reset()
