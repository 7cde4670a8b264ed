"""List associations: settings, the pure ListTargets lookup, and the Applier linking lists after
an EventUpsert over httpx.MockTransport (injected clock and sleep)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from connector.config import load_settings
from connector.errors import ConfigError
from connector.hubspot import HubSpotClient
from connector.normalize.command import Command, EventCancel, EventUpsert
from connector.serde.record import SourceRecord
from connector.sink.apply import Applier
from connector.sink.budget import RateBudget
from connector.sink.errors import HubSpotAccessError
from connector.sink.outcome import Reason
from connector.sink.request import EventKey, ListTargets
from connector.sink.retry import RetryPolicy
from connector.sink.work import EventWork, PendingCommand

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
PREFIX = "/marketing/v3/marketing-events"


# --------------------------------------------------------------------------- settings


def test_toml_tables_by_webinar_and_by_account(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('[[hubspot.list_associations]]\nwebinar_id = "w1"\nlist_ids = ["10", 11]\n'
                    '[[hubspot.list_associations]]\naccount_id = "acct"\nlist_ids = ["20"]\n')
    associations = load_settings({}, file).hubspot.list_associations
    assert [(a.webinar_id, a.account_id, a.list_ids) for a in associations] == [
        ("w1", None, ("10", "11")), (None, "acct", ("20",))]


def test_environment_takes_a_json_array() -> None:
    value = json.dumps([{"account_id": "acct", "list_ids": ["20", "21"]}])
    settings = load_settings({"CONNECTOR_HUBSPOT__LIST_ASSOCIATIONS": value})
    assert settings.hubspot.list_associations[0].list_ids == ("20", "21")
    assert load_settings({}).hubspot.list_associations == ()


@pytest.mark.parametrize(("value", "expected"), [
    ('[{"list_ids": ["1"]}]', "exactly one of webinar_id or account_id"),
    ('[{"webinar_id": "w", "account_id": "a", "list_ids": ["1"]}]', "exactly one of"),
    ('[{"webinar_id": "w", "list_ids": []}]', "at least 1"),
    ('[{"webinar_id": "w", "list_ids": [""]}]', "must not be empty"),
    ('[{"webinar_id": "w", "lists": ["1"]}]', "Extra inputs are not permitted"),
    ("[{not json", "expected a JSON array"),
])
def test_bad_associations_name_the_setting(value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"CONNECTOR_HUBSPOT__LIST_ASSOCIATIONS": value})
    assert "CONNECTOR_HUBSPOT__LIST_ASSOCIATIONS" in str(info.value)
    assert expected in str(info.value)


def test_targets_merge_webinar_then_account_lists_once_each(tmp_path: Path) -> None:
    value = json.dumps([{"webinar_id": "w1", "list_ids": ["1", "2"]},
                        {"account_id": "acct", "list_ids": ["2", "3"]},
                        {"webinar_id": "w1", "list_ids": ["4", "1"]}])
    targets = ListTargets.from_settings(
        load_settings({"CONNECTOR_HUBSPOT__LIST_ASSOCIATIONS": value}).hubspot.list_associations)
    assert targets.lists_for(EventKey("acct", "w1")) == ("1", "2", "4", "3")
    assert targets.lists_for(EventKey("acct", "w2")) == ("2", "3")
    assert targets.lists_for(EventKey("other", "w2")) == ()
    assert targets and not ListTargets()


# --------------------------------------------------------------------------- applier


class Fake:
    def __init__(self) -> None:
        self.now = 1_767_261_600.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class HubSpot:
    """Answers upserts with objectId 901 and list PUTs with ``list_status[list_id]`` (a list of
    statuses, one per call; 204 once they run out)."""

    def __init__(self, list_status: dict[str, list[int]] | None = None) -> None:
        self.list_status = list_status or {}
        self.requests: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        path = request.url.path.removeprefix(PREFIX)
        if request.method == "PUT" and path.startswith("/events/"):
            return httpx.Response(200, json={"id": "901", "objectId": "901", "eventName": "W",
                                             "eventOrganizer": "O", "customProperties": [],
                                             "createdAt": "2026-01-01T00:00:00Z",
                                             "updatedAt": "2026-01-01T00:00:00Z"})
        if request.method == "POST" and path.endswith("/cancel"):
            return httpx.Response(200, json={"objectId": "901", "eventName": "W",
                                             "eventOrganizer": "O", "eventCancelled": True})
        if request.method == "PUT" and path.startswith("/associations/901/lists/"):
            list_id = path.rsplit("/", 1)[1]
            statuses = self.list_status.get(list_id, [])
            status = statuses.pop(0) if statuses else 204
            if status == 204:
                return httpx.Response(204)
            return httpx.Response(status, json={"status": "error", "message": f"list {list_id}",
                                                "category": "OBJECT_NOT_FOUND" if status == 404
                                                else "ERROR", "correlationId": "cid-7"})
        return httpx.Response(500, json={"message": f"unexpected {request.method} {path}"})

    def list_puts(self) -> list[str]:
        return [p.rsplit("/", 1)[1] for m, p in self.requests if "/associations/" in p]


def applier(hubspot: Callable[[httpx.Request], httpx.Response], fake: Fake,
            targets: ListTargets | None) -> Applier:
    client = HubSpotClient(TOKEN, transport=httpx.MockTransport(hubspot))
    budget = RateBudget(window_limit=100, window_seconds=10, daily_limit=None, clock=fake.clock)
    policy = RetryPolicy(budget_seconds=60, clock=fake.clock, sleep=fake.sleep,
                         rng=random.Random(1))
    return Applier(client, budget=budget, policy=policy, clock=fake.clock, sleep=fake.sleep,
                   lists=targets)


def upsert(webinar: str = "w1", account: str = "acct", offset: int = 0,
           body: EventUpsert | EventCancel | None = None) -> EventWork:
    command = Command(webinar, account, body or EventUpsert("W", "O", "WEBINAR"))
    return EventWork(PendingCommand(SourceRecord("cmds", 0, offset, webinar.encode(), b"v"),
                                    command))


TARGETS = ListTargets({"w1": ("10", "11")}, {"acct": ("11", "12")})


def test_lists_are_associated_after_the_upsert_once_per_process() -> None:
    hubspot, fake = HubSpot(), Fake()
    sink = applier(hubspot, fake, TARGETS)
    first = sink.execute(upsert())
    assert len(first.applied) == 1 and not first.failed
    assert first.events_found == [EventKey("acct", "w1")]
    assert hubspot.requests[0][0] == "PUT" and "/events/w1" in hubspot.requests[0][1]
    assert hubspot.list_puts() == ["10", "11", "12"]
    assert sink.is_associated("901", "12")
    second = sink.execute(upsert(offset=1))
    assert len(second.applied) == 1
    assert hubspot.list_puts() == ["10", "11", "12"]  # cached: no second PUT
    assert len(hubspot.requests) == 5  # 2 upserts + 3 associations


def test_no_lists_configured_means_no_association_requests() -> None:
    hubspot = HubSpot()
    outcome = applier(hubspot, Fake(), None).execute(upsert())
    assert len(outcome.applied) == 1 and hubspot.list_puts() == []
    other = HubSpot()
    applier(other, Fake(), TARGETS).execute(upsert("w9", "acct-9"))
    assert other.list_puts() == []


def test_only_upserts_associate_lists() -> None:
    hubspot = HubSpot()
    outcome = applier(hubspot, Fake(), TARGETS).execute(upsert(body=EventCancel()))
    assert len(outcome.applied) == 1 and hubspot.list_puts() == []


def test_an_unknown_list_dead_letters_the_upsert_but_keeps_the_event_and_other_lists() -> None:
    hubspot, fake = HubSpot({"11": [404]}), Fake()
    sink = applier(hubspot, fake, TARGETS)
    outcome = sink.execute(upsert())
    assert not outcome.applied and len(outcome.failed) == 1
    failure = outcome.failed[0]
    assert failure.reason == Reason.LIST_ASSOCIATION_FAILED == "list-association-failed"
    assert failure.http_status == 404 and failure.category == "OBJECT_NOT_FOUND"
    assert failure.correlation_id == "cid-7"
    assert "objectId=901" in failure.message and "list(s) 11:" in failure.message
    assert outcome.events_found == [EventKey("acct", "w1")]  # parked attendance goes on
    assert sink.object_id(EventKey("acct", "w1")) == "901"
    assert hubspot.list_puts() == ["10", "11", "12"]  # 11 was not retried, 12 still linked
    assert fake.sleeps == []
    letter = failure.dead_letter()
    assert letter.reason == "list-association-failed" and letter.http_status == 404
    # a redrive after the list exists: the upsert again, and only the list that failed
    retry = sink.execute(upsert(offset=1))
    assert len(retry.applied) == 1 and hubspot.list_puts() == ["10", "11", "12", "11"]


def test_transient_failures_are_retried_within_the_budget() -> None:
    hubspot, fake = HubSpot({"10": [503, 429]}), Fake()
    outcome = applier(hubspot, fake, ListTargets({"w1": ("10",)})).execute(upsert())
    assert len(outcome.applied) == 1
    assert hubspot.list_puts() == ["10", "10", "10"]
    assert len(fake.sleeps) == 2


def test_retries_exhausted_dead_letter_the_upsert() -> None:
    hubspot, fake = HubSpot({"10": [503] * 1000}), Fake()
    outcome = applier(hubspot, fake, ListTargets({"w1": ("10",)})).execute(upsert())
    assert not outcome.applied
    assert outcome.failed[0].reason == Reason.LIST_ASSOCIATION_FAILED
    assert outcome.failed[0].http_status == 503
    assert fake.now - 1_767_261_600.0 <= 60  # the injected clock: within the retry budget


@pytest.mark.parametrize("status", [401, 403])
def test_access_refused_on_a_list_stops_the_worker(status: int) -> None:
    hubspot = HubSpot({"10": [status]})
    with pytest.raises(HubSpotAccessError):
        applier(hubspot, Fake(), ListTargets({"w1": ("10",)})).execute(upsert())
