"""Applier over httpx.MockTransport: per-input failures, fatal 401/403, missing events,
whole-request 400s, the objectId cache, rate-limit waits (injected clock and sleep)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from connector.hubspot import HubSpotClient
from connector.normalize.command import Attendance, Command, EventUpsert
from connector.serde.record import SourceRecord
from connector.sink.apply import Applier
from connector.sink.batch import Batcher
from connector.sink.budget import RateBudget
from connector.sink.errors import HubSpotAccessError
from connector.sink.outcome import Reason
from connector.sink.retry import RetryPolicy
from connector.sink.work import EventWork, PendingCommand, Work

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
EVENT = {"objectId": "901", "eventName": "W", "eventOrganizer": "O"}


class Fake:
    def __init__(self) -> None:
        self.now = 1_767_261_600.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def applier(handler: Callable[[httpx.Request], httpx.Response], fake: Fake,
            window: int = 100) -> Applier:
    client = HubSpotClient(TOKEN, transport=httpx.MockTransport(handler))
    budget = RateBudget(window_limit=window, window_seconds=10, daily_limit=None,
                        clock=fake.clock)
    policy = RetryPolicy(budget_seconds=60, clock=fake.clock, sleep=fake.sleep,
                         rng=random.Random(1))
    return Applier(client, budget=budget, policy=policy, clock=fake.clock, sleep=fake.sleep)


def attendance_batch(*emails: str, state: str = "REGISTERED") -> Work:
    batcher = Batcher(max_inputs=100, linger_seconds=0, clock=lambda: 0.0)
    for n, email in enumerate(emails):
        body = Attendance(state, None, email, 1_000 + n, {"firstname": "A"})
        batcher.add(PendingCommand(SourceRecord("cmds", 0, n, b"w1", b"v"),
                                   Command("w1", "acct", body)))
    batcher.seal_all()
    work = batcher.pop_ready()
    assert work is not None
    return work


def batch_answer(request: httpx.Request, failed: set[str], status: int = 200) -> httpx.Response:
    inputs = json.loads(request.content)["inputs"]
    results = [{"email": i["email"], "vid": n} for n, i in enumerate(inputs)
               if i["email"] not in failed]
    errors = [{"status": "error", "category": "VALIDATION_ERROR",
               "message": f"Invalid email {i['email']!r}", "context": {"emails": [i["email"]]},
               "errors": [], "links": {}} for i in inputs if i["email"] in failed]
    body: dict[str, Any] = {"status": "COMPLETE", "results": results,
                            "startedAt": "2026-01-01T00:00:00Z",
                            "completedAt": "2026-01-01T00:00:01Z"}
    if errors:
        body |= {"errors": errors, "numErrors": len(errors)}
    return httpx.Response(status, json=body, headers={"X-HubSpot-Correlation-Id": "cid-1"})


def test_a_partly_failed_batch_fails_exactly_the_failed_inputs() -> None:
    fake = Fake()
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.method == "GET":
            return httpx.Response(200, json=EVENT)
        return batch_answer(request, {"b@x.io", "d@x.io"}, status=207)

    outcome = applier(handler, fake).execute(
        attendance_batch("a@x.io", "b@x.io", "c@x.io", "d@x.io"))
    assert [p.command.body.email for p in outcome.applied] == ["a@x.io", "c@x.io"]  # type: ignore[union-attr]
    failed = {f.pending.command.body.email: f for f in outcome.failed}  # type: ignore[union-attr]
    assert set(failed) == {"b@x.io", "d@x.io"}
    letter = failed["b@x.io"].dead_letter()
    assert (letter.reason, letter.http_status, letter.category, letter.correlation_id) == (
        Reason.INPUT_REJECTED, 207, "VALIDATION_ERROR", "cid-1")
    assert letter.attempts == 1 and "b***@x.io" in letter.message
    assert letter.account == "acct"
    assert ("connector.errors.account", b"acct") in letter.error_headers(0)
    assert seen == ["/marketing/v3/marketing-events/events/w1",
                    "/marketing/v3/marketing-events/901/attendance/register/email-create"]


def test_the_object_id_is_cached_after_the_first_lookup() -> None:
    fake = Fake()
    gets: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            gets.append(request.url.path)
            return httpx.Response(200, json=EVENT)
        return batch_answer(request, set())

    sink = applier(handler, fake)
    sink.execute(attendance_batch("a@x.io"))
    sink.execute(attendance_batch("b@x.io"))
    assert len(gets) == 1


def test_an_upsert_teaches_the_object_id() -> None:
    fake = Fake()
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(f"{request.method} {request.url.path}")
        if request.method == "PUT":
            return httpx.Response(200, json={**EVENT, "objectId": "777"})
        return batch_answer(request, set())

    sink = applier(handler, fake)
    upsert = PendingCommand(SourceRecord("cmds", 0, 0, b"w1", b"v"),
                            Command("w1", "acct", EventUpsert("W", "O", "WEBINAR")))
    outcome = sink.execute(EventWork(upsert))
    assert outcome.applied == [upsert] and outcome.events_found
    sink.execute(attendance_batch("a@x.io"))
    assert paths[-1] == "POST /marketing/v3/marketing-events/777/attendance/register/email-create"


@pytest.mark.parametrize(("status", "body", "match"), [
    (401, {"category": "INVALID_AUTHENTICATION", "message": "no"},
     "CONNECTOR_HUBSPOT__ACCESS_TOKEN"),
    (403, {"category": "MISSING_SCOPES", "message": "scopes", "errors": [
        {"message": "m", "context": {"requiredGranularScopes":
                                     ["crm.objects.marketing_events.write"]}}]},
     r"grant crm\.objects\.marketing_events\.write"),
])
def test_401_and_403_are_fatal_and_say_what_is_wrong(status: int, body: dict[str, Any],
                                                     match: str) -> None:
    fake = Fake()
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(status, json={"status": "error", "correlationId": "c", **body})

    with pytest.raises(HubSpotAccessError, match=match) as info:
        applier(handler, fake).execute(attendance_batch("a@x.io"))
    assert TOKEN not in str(info.value)
    assert len(calls) == 1 and fake.sleeps == []  # never retried


def test_a_missing_event_parks_the_batch_instead_of_failing_it() -> None:
    fake = Fake()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"status": "error", "category": "OBJECT_NOT_FOUND",
                                         "message": "not found", "correlationId": "c"})

    work = attendance_batch("a@x.io", "b@x.io")
    outcome = applier(handler, fake).execute(work)
    assert outcome.missing == work.items and not outcome.failed and not outcome.applied


def test_a_whole_request_400_is_split_until_the_bad_input_is_alone() -> None:
    fake = Fake()
    posts: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=EVENT)
        inputs = json.loads(request.content)["inputs"]
        posts.append(len(inputs))
        if any(i["email"] == "c@x.io" for i in inputs):
            return httpx.Response(400, json={"status": "error", "category": "VALIDATION_ERROR",
                                             "message": "bad input", "correlationId": "c"})
        return batch_answer(request, set())

    outcome = applier(handler, fake).execute(
        attendance_batch("a@x.io", "b@x.io", "c@x.io", "d@x.io"))
    assert [f.pending.command.body.email for f in outcome.failed] == ["c@x.io"]  # type: ignore[union-attr]
    assert len(outcome.applied) == 3
    assert outcome.failed[0].reason == Reason.REJECTED


def test_server_errors_are_retried_and_counted_per_command() -> None:
    fake = Fake()
    answers = iter([httpx.Response(200, json=EVENT), httpx.Response(503, json={}),
                    httpx.Response(502, json={})])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or batch_answer(request, set())

    work = attendance_batch("a@x.io")
    outcome = applier(handler, fake).execute(work)
    assert outcome.applied == work.items
    assert work.items[0].attempts == 2 and len(fake.sleeps) == 2


def test_a_daily_429_waits_for_the_reset_without_spending_the_retry_budget() -> None:
    fake = Fake()
    answers = iter([httpx.Response(200, json=EVENT), httpx.Response(
        429, json={"status": "error", "policyName": "DAILY", "message": "daily",
                   "correlationId": "c"})])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or batch_answer(request, set())

    work = attendance_batch("a@x.io")
    outcome = applier(handler, fake).execute(work)
    assert outcome.applied == work.items
    assert sum(fake.sleeps) >= 3600 - 1  # waited an hour (probe interval), not the 60 s budget


def test_waits_for_the_rate_budget_before_sending() -> None:
    fake = Fake()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=EVENT)
        return batch_answer(request, set())

    sink = applier(handler, fake, window=2)
    sink.execute(attendance_batch("a@x.io"))  # GET + POST: the window is spent
    sink.execute(attendance_batch("b@x.io"))
    assert fake.sleeps and fake.sleeps[0] == pytest.approx(10.0)
