"""What a chaos run generates and which faults it injects when: a pure function of the plan and
its seed, so a failing seed replays the same timeline.

    kill:normalizer | kill:sink      SIGKILL of a worker (the supervisor starts it again)
    restart-broker:graceful          SIGTERM to the broker, which shuts down cleanly
    restart-broker:hard              SIGKILL to the broker, like a crash (log recovery on start)
    outage | storm                   a HubSpot outage window / 429 storm starts
    errors-on | errors-off           random 5xx from HubSpot, for the whole fault horizon
"""

from __future__ import annotations

import random
from dataclasses import dataclass

RESTART_EARLIEST = 2.0  # seconds: no broker restart before the workers have started


@dataclass(frozen=True)
class ChaosPlan:
    """What to generate and which faults to inject (times are seconds after the workers start)."""

    seed: int = 1
    webinars: int = 4
    people_per_webinar: int = 300
    poison_ratio: float = 0.01
    kills: int = 4
    #: Broker restarts, spread over the fault horizon (one per equal slice of it).
    broker_restarts: int = 1
    #: Share of the broker restarts that are hard (SIGKILL); True = all, False = none.
    hard_restarts: float = 0.0
    outage_seconds: float = 4.0
    storm_seconds: float = 4.0
    error_rate: float = 0.1
    fault_horizon: float = 20.0  # every fault starts within this many seconds of the start
    timeout: float = 240.0
    #: 0: the whole input is published before the workers start; else it is published evenly
    #: over this many seconds after they start (faults and broker restarts hit a live stream).
    publish_seconds: float = 0.0
    window_limit: int = 190
    #: HubSpot's latency in the sandbox: seconds per request (+ 1 ms per batch input, +/- 20%);
    #: 0: loopback. With latency, the sink has many requests in flight when faults hit.
    hubspot_latency: float = 0.0
    #: Sink instances in one group; the kills hit the first, so the others see rebalances
    #: (revokes with their requests in flight).
    sinks: int = 1
    #: The workers' --log-level; their logs are in the run's directory (<role>.log).
    worker_log_level: str = "INFO"
    #: How long a worker may take to exit after SIGTERM at the end before it is SIGKILLed
    #: (recorded as an unexpected exit: a stop that hangs is a defect too).
    stop_timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.broker_restarts < 0 or not 0.0 <= self.hard_restarts <= 1.0:
            raise ValueError("broker_restarts >= 0 and 0 <= hard_restarts <= 1")
        if self.broker_restarts and self.fault_horizon <= RESTART_EARLIEST:
            raise ValueError(f"fault_horizon must exceed {RESTART_EARLIEST}s to restart the broker")

    @property
    def hard_restart_count(self) -> int:
        return int(self.broker_restarts * self.hard_restarts + 0.5)


def restart_kinds(plan: ChaosPlan, rng: random.Random) -> list[str]:
    """"graceful" / "hard" for each restart, in a seeded order."""
    hard = plan.hard_restart_count
    kinds = ["hard"] * hard + ["graceful"] * (plan.broker_restarts - hard)
    rng.shuffle(kinds)
    return kinds


def schedule(plan: ChaosPlan, rng: random.Random) -> list[tuple[float, str]]:
    """(seconds after the start, event), in time order.

    The k-th broker restart falls in the k-th of `broker_restarts` equal slices of
    [RESTART_EARLIEST, fault_horizon], so restarts are spread over the run, never bunched.
    """
    horizon = plan.fault_horizon
    events = [(rng.uniform(1, horizon), f"kill:{rng.choice(['normalizer', 'sink'])}")
              for _ in range(plan.kills)]
    if plan.broker_restarts:
        width = (horizon - RESTART_EARLIEST) / plan.broker_restarts
        for k, kind in enumerate(restart_kinds(plan, rng)):
            start = RESTART_EARLIEST + k * width
            events.append((rng.uniform(start, start + width), f"restart-broker:{kind}"))
    events.append((rng.uniform(0, horizon), "outage"))
    events.append((rng.uniform(0, horizon), "storm"))
    events.append((0.0, "errors-on"))
    events.append((horizon, "errors-off"))
    return sorted(events)
