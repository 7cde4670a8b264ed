"""Retry policy: classification table, backoff with Retry-After, budget (injected sleep)."""

from __future__ import annotations

import random

import pytest

from connector.hubspot import (
    AuthenticationError,
    ConflictError,
    HubSpotConnectionError,
    HubSpotHTTPError,
    HubSpotTimeoutError,
    LockedError,
    MigrationInProgressError,
    MissingScopesError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
    ValidationError,
)
from connector.sink.retry import Disposition, RetryPolicy, backoff, classify


def http(cls: type[HubSpotHTTPError], status: int, **kw: object) -> HubSpotHTTPError:
    return cls(status=status, message="m", **kw)  # type: ignore[arg-type]


def daily() -> RateLimitedError:
    error = RateLimitedError(status=429, message="daily")
    error.policy_name = "DAILY"
    return error


@pytest.mark.parametrize(("error", "disposition"), [
    (http(RateLimitedError, 429), Disposition.RETRY),
    (daily(), Disposition.WAIT_DAILY),
    (http(ServerError, 500), Disposition.RETRY),
    (http(ServerError, 502), Disposition.RETRY),
    (http(ServerError, 503), Disposition.RETRY),
    (http(LockedError, 423), Disposition.RETRY),
    (http(MigrationInProgressError, 477), Disposition.RETRY),
    (HubSpotTimeoutError("t", method="POST", path="/"), Disposition.RETRY),
    (HubSpotConnectionError("c", method="POST", path="/"), Disposition.RETRY),
    (http(ValidationError, 400), Disposition.DEAD_LETTER),
    (http(ConflictError, 409), Disposition.DEAD_LETTER),
    (http(HubSpotHTTPError, 414), Disposition.DEAD_LETTER),
    (http(NotFoundError, 404), Disposition.EVENT_MISSING),
    (http(AuthenticationError, 401), Disposition.FATAL),
    (http(MissingScopesError, 403), Disposition.FATAL),
    (UnexpectedResponseError("u", status=200, method="POST", path="/", body=b""),
     Disposition.DEAD_LETTER),
], ids=lambda v: getattr(v, "value", type(v).__name__))
def test_classification(error: Exception, disposition: Disposition) -> None:
    assert classify(error) is disposition


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    waits = [backoff(n, base_seconds=1, cap_seconds=8, server_minimum=None, rng=rng)
             for n in range(1, 8)]
    ceilings = [1, 2, 4, 8, 8, 8, 8]
    assert all(c / 2 <= w <= c for w, c in zip(waits, ceilings, strict=True))


def test_backoff_never_less_than_retry_after() -> None:
    rng = random.Random(1)
    assert backoff(1, base_seconds=0.5, cap_seconds=30, server_minimum=12, rng=rng) == 12


class Fake:
    """Clock and sleep: sleeping advances the clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def policy(fake: Fake, budget: float = 60) -> RetryPolicy:
    return RetryPolicy(budget_seconds=budget, clock=fake.clock, sleep=fake.sleep,
                       base_seconds=1, cap_seconds=8, rng=random.Random(3))


def script(*outcomes: object) -> tuple[list[int], object]:
    calls: list[int] = []

    def call() -> object:
        calls.append(1)
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return calls, call


def test_retries_what_can_succeed_later_honouring_retry_after() -> None:
    fake = Fake()
    calls, call = script(http(ServerError, 503), http(MigrationInProgressError, 477,
                                                      retry_after=20.0),
                         http(LockedError, 423), "ok")
    failures: list[Exception] = []
    assert policy(fake).run(call, on_failure=failures.append) == "ok"  # type: ignore[arg-type]
    assert len(calls) == 4 and len(failures) == 3
    assert fake.sleeps[1] == 20.0  # Retry-After
    assert fake.sleeps[2] >= 2.0  # a 423 lock lasts 2 s


@pytest.mark.parametrize("error", [http(ValidationError, 400), http(NotFoundError, 404),
                                   http(ConflictError, 409)])
def test_client_errors_are_never_retried(error: Exception) -> None:
    fake = Fake()
    calls, call = script(error, "ok")
    with pytest.raises(type(error)):
        policy(fake).run(call)  # type: ignore[arg-type]
    assert len(calls) == 1 and fake.sleeps == []


def test_the_total_budget_stops_retrying_and_raises_the_last_error() -> None:
    fake = Fake()
    calls, call = script(*[http(ServerError, 503)] * 100)
    with pytest.raises(ServerError):
        policy(fake, budget=30).run(call)  # type: ignore[arg-type]
    assert fake.now <= 30
    assert 3 < len(calls) < 20


def test_the_budget_counts_from_the_commands_first_failure() -> None:
    fake = Fake()
    fake.now = 100.0
    _calls, call = script(*[http(ServerError, 503)] * 100)
    with pytest.raises(ServerError):
        policy(fake, budget=30).run(call, origin=80.0)  # type: ignore[arg-type]
    assert fake.now <= 110.0


def test_excluded_time_is_not_charged() -> None:
    fake = Fake()
    _calls, call = script(*[http(ServerError, 503)] * 100)
    with pytest.raises(ServerError):
        policy(fake, budget=10).run(call, excluded=lambda: 50.0)  # type: ignore[arg-type]
    assert fake.now > 40
