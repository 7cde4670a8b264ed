"""Faults on demand: which request fails how (table in connector/sandbox/README.md).

A `FaultConfig` is frozen; the running sandbox holds one `FaultInjector` that can be swapped at
runtime (`PUT /_sandbox/faults`). Random decisions come from one seeded RNG, so the same
request sequence under the same seed fails the same way.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.sandbox.latency import LatencyModel, delay_for


@dataclass(frozen=True)
class Window:
    """A time window on the sandbox clock: [start, start + duration) epoch seconds.

    after_first_request=True makes `start` relative: seconds after the first HubSpot request the
    injector decides on, so the fault meets a client however late that client starts sending.
    """

    start: float
    duration: float
    after_first_request: bool = False

    def contains(self, now: float) -> bool:
        """Whether `now` falls inside the window (a relative one: once `anchored`)."""
        return self.start <= now < self.start + self.duration

    def anchored(self, first_request: float) -> Window:
        """The window on the absolute clock: a relative one counts from `first_request`."""
        if not self.after_first_request:
            return self
        return Window(start=first_request + self.start, duration=self.duration)


def _anchored(window: Window | None, first_request: float) -> Window | None:
    return None if window is None else window.anchored(first_request)


def _rate(value: float, name: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"FaultConfig.{name} must be within [0, 1], got {value}")
    return value


@dataclass(frozen=True)
class FaultConfig:
    """Fault knobs. Rates are probabilities per request (or per batch input).

    error_rate / error_rates: answer `error_status` instead of serving; error_rates overrides the
      global rate per operation name (see README's operation table).
    latency_model: how long each request takes (base + per batch input, jittered, per
      operation overrides; see latency.py), held before serving.
    latency_seconds / latencies: a fixed delay (global / per operation) added to the model's:
      the older knob, a plain base without jitter.
    outage: answer `outage_status` to every HubSpot request inside the window.
    storm: answer 429 TEN_SECONDLY_ROLLING to every HubSpot request inside the window.
      (A window with after_first_request starts counting at the first HubSpot request.)
    drop_rate / drop_rates: close the connection without any response.
    batch_input_failure_rate: each input of a batch (events upsert, batch update/archive,
      attendance) fails on its own with a per-input error; the rest succeed.
    """

    seed: int = 0
    error_rate: float = 0.0
    error_rates: Mapping[str, float] = field(default_factory=dict)
    error_status: int = 500
    latency_seconds: float = 0.0
    latencies: Mapping[str, float] = field(default_factory=dict)
    outage: Window | None = None
    outage_status: int = 503
    storm: Window | None = None
    drop_rate: float = 0.0
    drop_rates: Mapping[str, float] = field(default_factory=dict)
    batch_input_failure_rate: float = 0.0
    latency_model: LatencyModel = field(default_factory=LatencyModel)

    def __post_init__(self) -> None:
        _rate(self.error_rate, "error_rate")
        _rate(self.drop_rate, "drop_rate")
        _rate(self.batch_input_failure_rate, "batch_input_failure_rate")
        for name, value in {**self.error_rates, **self.drop_rates}.items():
            _rate(value, f"rates[{name}]")
        if not 400 <= self.error_status <= 599 or not 500 <= self.outage_status <= 599:
            raise ValueError("FaultConfig: error_status must be 4xx/5xx, outage_status 5xx")
        if self.latency_seconds < 0 or any(v < 0 for v in self.latencies.values()):
            raise ValueError("FaultConfig: latencies must be >= 0")
        if not isinstance(self.latency_model, LatencyModel):
            raise ValueError("FaultConfig.latency_model must be a LatencyModel (JSON: an object)")
        object.__setattr__(self, "error_rates", dict(self.error_rates))
        object.__setattr__(self, "latencies", dict(self.latencies))
        object.__setattr__(self, "drop_rates", dict(self.drop_rates))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, now: float) -> FaultConfig:
        """Build from JSON (admin endpoint / CLI). Windows take `start` (absolute clock seconds)
        or `start_in` (seconds from `now`), plus `duration`; with `"after_first_request": true`,
        `start_in` (default 0) counts from the first HubSpot request instead of from `now`."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        values = dict(data)
        if isinstance(values.get("latency_model"), Mapping):
            values["latency_model"] = LatencyModel.from_dict(values["latency_model"])
        for key in ("outage", "storm"):
            raw = values.get(key)
            if raw is None:
                continue
            if not isinstance(raw, Mapping) or "duration" not in raw:
                raise ValueError(f"{key} must be an object with duration and start or start_in")
            relative = raw.get("after_first_request", False)
            if not isinstance(relative, bool):
                raise ValueError(f"{key}.after_first_request must be true or false")
            if relative:
                if "start" in raw:
                    raise ValueError(f"{key}: after_first_request takes start_in, not start")
                values[key] = Window(start=float(raw.get("start_in", 0)),
                                     duration=float(raw["duration"]), after_first_request=True)
                continue
            start = float(raw["start"]) if "start" in raw else now + float(raw.get("start_in", 0))
            values[key] = Window(start=start, duration=float(raw["duration"]))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (windows as {start, duration}; relative ones as {start_in, duration,
        after_first_request}), accepted back by `from_dict`."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, Window) and value.after_first_request:
                value = {"start_in": value.start, "duration": value.duration,
                         "after_first_request": True}
            elif isinstance(value, Window):
                value = {"start": value.start, "duration": value.duration}
            elif isinstance(value, LatencyModel):
                value = value.to_dict()
            elif isinstance(value, Mapping):
                value = dict(value)
            out[name] = value
        return out


class FaultKind(enum.Enum):
    """What the injector decided for one request."""

    NONE = "none"
    OUTAGE = "outage"
    STORM = "storm"
    DROP = "drop"
    ERROR = "error"


@dataclass(frozen=True)
class FaultDecision:
    """The decision for one request: a kind, a status to answer (if any) and latency to add."""

    kind: FaultKind
    status: int | None = None
    latency: float = 0.0


class FaultInjector:
    """Decides per request (and per batch input) whether to inject a fault."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        # jitter draws its own stream, so turning it on leaves the fault decisions unchanged
        self._latency_rng = random.Random(f"latency-{config.seed}")
        self.injected: dict[str, int] = {}
        # outage and storm on the absolute clock, fixed at the first request decided on
        self._windows: tuple[Window | None, Window | None] | None = None

    def decide(self, operation: str, now: float, inputs: int = 0) -> FaultDecision:
        """Fault for one HubSpot request (carrying `inputs` batch items), checked in the
        README's order."""
        cfg = self.config
        if self._windows is None:
            self._windows = (_anchored(cfg.outage, now), _anchored(cfg.storm, now))
        outage, storm = self._windows
        latency = cfg.latencies.get(operation, cfg.latency_seconds) + delay_for(
            cfg.latency_model, operation, inputs, self._latency_rng)
        if outage is not None and outage.contains(now):
            return self._count(FaultDecision(FaultKind.OUTAGE, cfg.outage_status, latency))
        if storm is not None and storm.contains(now):
            return self._count(FaultDecision(FaultKind.STORM, 429, latency))
        drop = cfg.drop_rates.get(operation, cfg.drop_rate)
        if drop and self._rng.random() < drop:
            return self._count(FaultDecision(FaultKind.DROP, None, latency))
        error = cfg.error_rates.get(operation, cfg.error_rate)
        if error and self._rng.random() < error:
            return self._count(FaultDecision(FaultKind.ERROR, cfg.error_status, latency))
        return FaultDecision(FaultKind.NONE, None, latency)

    def fail_batch_input(self) -> bool:
        """Whether the next batch input should fail on its own."""
        rate = self.config.batch_input_failure_rate
        if rate and self._rng.random() < rate:
            self.injected["batch_input"] = self.injected.get("batch_input", 0) + 1
            return True
        return False

    def _count(self, decision: FaultDecision) -> FaultDecision:
        key = decision.kind.value
        self.injected[key] = self.injected.get(key, 0) + 1
        return decision
