"""Stand-ins for confluent-kafka objects, and a fake clock, in unit tests (no broker)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FakeMessage:
    """A consumed record, with confluent_kafka.Message's accessors."""

    topic_: str
    partition_: int
    offset_: int
    key_: bytes | None
    value_: bytes | None
    headers_: list[tuple[str, bytes]] | None = None
    timestamp_: tuple[int, int] = (1, 1)

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self.topic_

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def key(self) -> bytes | None:
        return self.key_

    def value(self) -> bytes | None:
        return self.value_

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self.headers_

    def timestamp(self) -> tuple[int, int]:
        return self.timestamp_


class FakeClock:
    """A monotonic clock for code with an injected ``clock`` and ``sleep``: sleeping moves it."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
