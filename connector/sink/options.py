"""How a sink worker runs: its topics, bounds and timings (``[sink]`` settings, test values)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SinkOptions:
    """The sink worker's topics, bounds and timings (every wait on Kafka is bounded)."""

    topic: str
    dlq_topic: str
    #: The consumer group (names the lag gauge; the topic when empty).
    group: str = ""
    #: How often finished offsets are committed and progress is reported.
    commit_interval_seconds: float = 1.0
    #: How long ``stop`` may spend applying what is in hand.
    drain_seconds: float = 20.0
    #: The longest a poll waits (also the slice of every wait that keeps polling).
    poll_seconds: float = 0.2
    max_poll_records: int = 500
    #: Commands held (batched and stashed) at which every partition is paused.
    max_buffered: int = 100_000
    #: Commands one platform account may hold (app mode; None: no share, every account may
    #: hold up to ``max_buffered``): see connector.sink.shares.
    max_held_per_account: int | None = None
    #: How long ``stop`` waits for dead letters to be delivered.
    dlq_timeout_seconds: float = 10.0
    #: A commit without an answer after this long is sent again.
    commit_retry_seconds: float = 15.0
    #: How long ``stop`` waits for the broker to confirm the final commit.
    commit_wait_seconds: float = 10.0
    #: How long ``stop`` waits for the consumer to close.
    close_timeout_seconds: float = 10.0
    #: How long a revoke or ``stop`` waits for work in flight to land (past a request's
    #: timeout: a flight stops at its next wait).
    landing_seconds: float = 30.0
