"""The running sandbox: config, accounts (one store each), OAuth state, limiters, faults,
callback fetcher, request log and counters."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Hashable
from typing import Any

import httpx

from connector.sandbox.account import ID_STRIDE, Account, account_persist_path
from connector.sandbox.attendance import Counters
from connector.sandbox.auth import Caller
from connector.sandbox.callback import EventDetailsFetcher
from connector.sandbox.config import AppConfig, SandboxConfig
from connector.sandbox.faults import FaultConfig, FaultInjector
from connector.sandbox.models import EventRecord
from connector.sandbox.oauth import OAuthState
from connector.sandbox.ratelimit import RateLimiter
from connector.sandbox.render import EventRenderer
from connector.sandbox.store import SandboxStore
from connector.sandbox.timefmt import ms_from_seconds


class Tally:
    """Request counters: totals, 429s by policy, faults, by status, by operation."""

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.by_operation: Counter[str] = Counter()

    def count(self, entry: dict[str, Any]) -> None:
        """Count one logged request."""
        self.counters["requests"] += 1
        status = entry.get("status")
        self.by_status[str(status)] += 1
        self.by_operation[str(entry.get("operation"))] += 1
        if status == 429:
            self.counters["rate_limited"] += 1
            self.counters[f"rate_limited.{entry.get('policy') or 'unknown'}"] += 1
        if entry.get("fault"):
            self.counters[f"fault.{entry['fault']}"] += 1

    def as_dict(self) -> dict[str, Any]:
        """The admin view."""
        return {
            "requests": self.counters["requests"],
            "rateLimited": self.counters["rate_limited"],
            "rateLimitedByPolicy": {
                k.split(".", 1)[1]: v
                for k, v in self.counters.items()
                if k.startswith("rate_limited.")
            },
            "faults": {
                k.split(".", 1)[1]: v for k, v in self.counters.items() if k.startswith("fault.")
            },
            "byStatus": dict(self.by_status),
            "byOperation": dict(self.by_operation),
        }

    def clear(self) -> None:
        """Forget everything counted."""
        self.counters.clear()
        self.by_status.clear()
        self.by_operation.clear()


class Sandbox:
    """Everything one sandbox instance holds between requests."""

    def __init__(
        self, config: SandboxConfig, *, callback_transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self.accounts: dict[int, Account] = {
            a.hub_id: Account(
                a,
                account_persist_path(
                    config.persist_path, a.hub_id, is_default=a.hub_id == config.portal_id
                ),
                id_offset=index * ID_STRIDE,
            )
            for index, a in enumerate(config.accounts)
        }
        self.default_account = self.accounts[config.portal_id]
        self.limiter = RateLimiter(
            window_limit=config.window_limit,
            window_seconds=config.window_seconds,
            daily_limit=config.daily_limit,
            clock=config.clock,
            utc_offset_hours=config.daily_reset_utc_offset_hours,
        )
        self.oauth_limiter = RateLimiter(
            window_limit=config.oauth_window_limit,
            window_seconds=config.oauth_window_seconds,
            daily_limit=None,
            clock=config.clock,
        )
        self.oauth = OAuthState(
            apps=config.oauth_apps,
            accounts={a.hub_id: a for a in config.accounts},
            clock=config.clock,
            code_ttl=config.auth_code_ttl_seconds,
            access_ttl=config.access_token_ttl_seconds,
            access_survives_uninstall=config.access_tokens_survive_uninstall,
        )
        self.faults = FaultInjector(config.faults)
        self.fetcher = EventDetailsFetcher(
            transport=callback_transport or config.callback_transport,
            timeout=config.callback_timeout_seconds,
        )
        self.renderer = EventRenderer(
            emit_nulls=config.emit_nulls,
            app_names={a.app_id: a.name for a in config.every_app()},
        )
        self.apps_by_token: dict[str, AppConfig] = {a.token: a for a in config.apps}
        #: private-app token -> its caller (in the default account), built once for the hot path
        self.private_callers: dict[str, Caller] = {
            a.token: Caller.of_app(a, config.portal_id) for a in config.apps
        }
        self.request_log: deque[dict[str, Any]] = deque(maxlen=config.request_log_size)
        self.callback_log: deque[dict[str, Any]] = deque(maxlen=config.request_log_size)
        self.tally = Tally()
        self.tally_by_hub: dict[int, Tally] = {}
        self._seq = 0

    @property
    def store(self) -> SandboxStore:
        """The default account's store. It also keeps every app's settings (eventDetailsUrl),
        which HubSpot holds per app, not per account."""
        return self.default_account.store

    def account(self, hub_id: int) -> Account | None:
        """The account with this hub id."""
        return self.accounts.get(hub_id)

    def now(self) -> float:
        """Clock seconds."""
        return self.config.clock()

    def now_ms(self) -> int:
        """Clock epoch milliseconds."""
        return ms_from_seconds(self.config.clock())

    def counters_of(self, event: EventRecord, account: Account | None = None) -> Counters:
        """Participation counters of one event of `account` (default: the default account)."""
        return (account or self.default_account).counters_of(event, self.now_ms())

    def limits_of(self, caller: Caller) -> tuple[RateLimiter, Hashable]:
        """The limiter and key counting this caller: per (app, hub) for OAuth, per app else."""
        if caller.is_oauth:
            return self.oauth_limiter, (caller.app_id, caller.hub_id)
        return self.limiter, caller.app_id

    def set_faults(self, faults: FaultConfig) -> None:
        """Swap the fault configuration (fresh RNG from its seed)."""
        self.faults = FaultInjector(faults)

    def log_request(self, entry: dict[str, Any]) -> None:
        """Record one HubSpot request and bump counters (overall and per hub)."""
        self._seq += 1
        entry["seq"] = self._seq
        self.request_log.append(entry)
        self.tally.count(entry)
        hub_id = entry.get("hubId")
        if isinstance(hub_id, int):
            self.tally_by_hub.setdefault(hub_id, Tally()).count(entry)

    def stats(self, hub_id: int | None = None) -> dict[str, Any]:
        """Counters for the admin API: every request, or one account's (`hub_id`)."""
        if hub_id is None:
            tally, accounts = self.tally, list(self.accounts.values())
        else:
            tally = self.tally_by_hub.get(hub_id) or Tally()
            accounts = [self.accounts[hub_id]]
        out: dict[str, Any] = {
            # Applied attendance records (one interaction each): what benchmarks count.
            "interactions": sum(
                len(p.interactions) for a in accounts for p in a.store.participations.values()
            ),
            **tally.as_dict(),
            "batchInputFailures": self.faults.injected.get("batch_input", 0),
            "callbacks": len(self.callback_log),
        }
        if hub_id is not None:
            out["hubId"] = hub_id
        return out

    def reset(
        self,
        *,
        state: bool = True,
        logs: bool = True,
        limits: bool = True,
        oauth: bool | None = None,
        hub_id: int | None = None,
    ) -> None:
        """Clear state (every account's, or one's), OAuth installs and tokens (by default with
        a whole-sandbox `state` reset), logs/counters and rate-limit budgets."""
        if state:
            targets = self.accounts.values() if hub_id is None else [self.accounts[hub_id]]
            for account in targets:
                account.reset()
        if (state and hub_id is None) if oauth is None else oauth:
            self.oauth.reset()
        if logs:
            self.request_log.clear()
            self.callback_log.clear()
            self.tally.clear()
            self.tally_by_hub.clear()
        if limits:
            self.limiter.reset()
            self.oauth_limiter.reset()

    def flush(self) -> None:
        """Persist every account's changes."""
        for account in self.accounts.values():
            account.store.flush()

    def close(self) -> None:
        """Flush and close every account's persistence."""
        for account in self.accounts.values():
            account.close()
