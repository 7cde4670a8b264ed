"""How long the sandbox takes to answer: a latency model per operation.

delay = (base + per_input x inputs) x (1 + jitter x u),  u uniform in [-1, 1]

`inputs` counts the items of a batch body (`{"inputs": [...]}`: attendance, participation and
event batches); any other request has none. The spread is uniform rather than lognormal so a
delay stays within [nominal x (1 - jitter), nominal x (1 + jitter)]: a test, or a client's
margin, can rely on those bounds. The functions are pure; the RNG is passed in, seeded by the
caller so the same request sequence gets the same delays.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def _non_negative(value: float, name: str) -> float:
    if value < 0:
        raise ValueError(f"latency {name} must be >= 0, got {value}")
    return float(value)


@dataclass(frozen=True)
class LatencyCost:
    """What one operation costs: seconds per request plus seconds per batch input."""

    base_seconds: float = 0.0
    per_input_seconds: float = 0.0

    def __post_init__(self) -> None:
        _non_negative(self.base_seconds, "base_seconds")
        _non_negative(self.per_input_seconds, "per_input_seconds")


@dataclass(frozen=True)
class LatencyOverride:
    """One operation's own cost; a field left None keeps the model's global value."""

    base_seconds: float | None = None
    per_input_seconds: float | None = None

    def __post_init__(self) -> None:
        for name in ("base_seconds", "per_input_seconds"):
            value = getattr(self, name)
            if value is not None:
                _non_negative(value, name)


@dataclass(frozen=True)
class LatencyModel:
    """A base and a per-input cost (overridable per operation name) with a uniform jitter.

    jitter: the spread as a fraction of the nominal delay, within [0, 1].
    operations: operation name (the sandbox README's table) -> its own cost.
    """

    base_seconds: float = 0.0
    per_input_seconds: float = 0.0
    jitter: float = 0.0
    operations: Mapping[str, LatencyOverride] = field(default_factory=dict)

    def __post_init__(self) -> None:
        LatencyCost(self.base_seconds, self.per_input_seconds)  # validates both
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"latency jitter must be within [0, 1], got {self.jitter}")
        object.__setattr__(self, "operations", dict(self.operations))

    def counts_inputs(self, operation: str) -> bool:
        """Whether the operation's delay depends on its inputs (worth parsing its body)."""
        return cost_of(self, operation).per_input_seconds > 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyModel:
        """From JSON: {base_seconds, per_input_seconds, jitter, operations: {op: {...}}}."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown latency settings: {sorted(unknown)}")
        values = dict(data)
        operations = values.pop("operations", None) or {}
        if not isinstance(operations, Mapping):
            raise ValueError("latency operations must be an object of operation -> cost")
        return cls(**values, operations={
            name: LatencyOverride(**cost) for name, cost in operations.items()})

    def to_dict(self) -> dict[str, Any]:
        """JSON form, accepted back by `from_dict` (unset override fields omitted)."""
        operations = {
            name: {k: v for k, v in vars(cost).items() if v is not None}
            for name, cost in self.operations.items()
        }
        return {"base_seconds": self.base_seconds, "per_input_seconds": self.per_input_seconds,
                "jitter": self.jitter, "operations": operations}


def cost_of(model: LatencyModel, operation: str) -> LatencyCost:
    """The operation's cost: its override's fields where set, the model's elsewhere."""
    override = model.operations.get(operation, LatencyOverride())
    return LatencyCost(
        model.base_seconds if override.base_seconds is None else override.base_seconds,
        model.per_input_seconds if override.per_input_seconds is None
        else override.per_input_seconds,
    )


def nominal_delay(cost: LatencyCost, inputs: int) -> float:
    """The delay before jitter: base plus per-input cost times the batch's inputs."""
    return cost.base_seconds + cost.per_input_seconds * max(0, inputs)


def jittered(delay: float, jitter: float, rng: random.Random) -> float:
    """`delay` spread uniformly by +/- `jitter` of itself (no draw when either is zero, so a
    jitter-free model leaves the RNG's sequence alone)."""
    if delay == 0 or jitter == 0:
        return delay
    return delay * (1.0 + jitter * rng.uniform(-1.0, 1.0))


def delay_for(model: LatencyModel, operation: str, inputs: int, rng: random.Random) -> float:
    """Seconds to hold one request of `operation` carrying `inputs` batch items."""
    return jittered(nominal_delay(cost_of(model, operation), inputs), model.jitter, rng)


def batch_inputs(body: bytes) -> int:
    """Items in a batch body's `inputs` list; 0 for any other (or unparsable) body."""
    if not body:
        return 0
    try:
        data = json.loads(body)
    except ValueError:
        return 0  # the handler answers the malformed body; the delay just ignores it
    inputs = data.get("inputs") if isinstance(data, dict) else None
    return len(inputs) if isinstance(inputs, list) else 0
