"""HubSpotClient against the sandbox (connector.sandbox), in process.

The client is synchronous and httpx's ASGITransport is async-only, so requests go through
``connector.hubspot.asgi.SyncASGITransport``: httpx.ASGITransport run on one long-lived event loop
in a helper thread (an anyio blocking portal). Public APIs only; the sandbox keeps its state on
that one loop between requests. The sandbox clock is fixed, so nothing depends on wall-clock time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connector.hubspot import (
    AuthenticationError,
    ConflictError,
    CustomProperty,
    HubSpotClient,
    HubSpotConnectionError,
    LockedError,
    MarketingEventCreateRequestParams,
    MarketingEventEmailSubscriber,
    MarketingEventPublicUpdateRequestFullV2,
    MarketingEventSubscriber,
    MarketingEventUpdateRequestParams,
    MigrationInProgressError,
    MissingScopesError,
    NotFoundError,
    ParticipationState,
    RateLimitedError,
    ServerError,
    SignatureError,
    SubscriberState,
    ValidationError,
    is_retriable,
)
from connector.hubspot.asgi import SyncASGITransport
from connector.hubspot.attendance import AttendanceProperties
from connector.hubspot.signature import verify_request
from connector.sandbox import AppConfig, FaultConfig, SandboxConfig, Window, create_app

NOW = 1_700_000_000.0  # the sandbox clock (epoch seconds), fixed
NOW_MS = int(NOW * 1000)
READ = "crm.objects.marketing_events.read"
WRITE = "crm.objects.marketing_events.write"


def _clock() -> float:
    return NOW


ClientFactory = Callable[..., HubSpotClient]


@pytest.fixture
def connect() -> Iterator[ClientFactory]:
    """``connect(cfg, token=None, app=None)`` -> a client on a sandbox built from ``cfg``."""
    clients: list[HubSpotClient] = []

    def make(
        cfg: SandboxConfig, *, token: str | None = None, app: Any = None, **kwargs: Any
    ) -> HubSpotClient:
        sandbox_app = app if app is not None else create_app(cfg, **kwargs)
        client = HubSpotClient(
            token if token is not None else cfg.apps[0].token,
            base_url="https://api.hubapi.com",
            transport=SyncASGITransport(sandbox_app),
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def _cfg(**overrides: Any) -> SandboxConfig:
    return SandboxConfig.default(clock=_clock, **overrides)


def _event(external_event_id: str = "webinar-1", account: str = "acct-1", **kw: Any) -> Any:
    return MarketingEventCreateRequestParams(
        external_account_id=account,
        external_event_id=external_event_id,
        event_name=kw.pop("event_name", "Winter webinar"),
        event_organizer="Snowman Fellowship",
        event_type="WEBINAR",
        start_date_time=datetime(2023, 11, 14, 22, 0, tzinfo=UTC),
        end_date_time=datetime(2023, 11, 14, 23, 0, tzinfo=UTC),
        **kw,
    )


# ----------------------------------------------------------------------------- happy paths


@pytest.mark.parametrize("emit_nulls", [False, True])
def test_event_lifecycle_round_trip(connect: ClientFactory, emit_nulls: bool) -> None:
    client = connect(_cfg(emit_nulls=emit_nulls))
    ids = {"external_account_id": "acct-1", "external_event_id": "webinar-1"}

    created = client.upsert_event(_event(custom_properties=[CustomProperty(name="k", value="v")]))
    assert created.status == 200
    object_id = created.value.object_id or created.value.id
    assert object_id
    assert created.correlation_id
    assert created.rate_limit is not None and created.rate_limit.max == 100

    read = client.get_event(**ids).value
    assert read.event_name == "Winter webinar"
    assert read.start_date_time == datetime(2023, 11, 14, 22, 0, tzinfo=UTC)

    patched = client.update_event(MarketingEventUpdateRequestParams(event_name="Renamed"), **ids)
    assert patched.value.event_name == "Renamed"

    by_id = client.get_event_by_object_id(object_id).value
    assert by_id.object_id == object_id and by_id.external_event_id == "webinar-1"
    assert by_id.app_info is not None and by_id.app_info.id == str(_cfg().apps[0].app_id)

    assert [e.object_id for e in client.list_events(limit=10).value.results] == [object_id]
    assert [r.object_id for r in client.search_events("webinar-1").value.results] == [object_id]
    found = client.find_event_identifiers("webinar-1").value
    assert [r.object_id for r in found.results] == [object_id]

    completed = client.complete_event(
        **ids,
        start_date_time=datetime(2023, 11, 14, 22, 0, tzinfo=UTC),
        end_date_time=datetime(2023, 11, 14, 23, 0, tzinfo=UTC),
    )
    assert completed.value.event_completed is True

    assert client.delete_event(**ids).status == 204
    with pytest.raises(NotFoundError):
        client.get_event(**ids)


def test_attendance_counters_and_breakdown(connect: ClientFactory) -> None:
    client = connect(_cfg())
    object_id = client.upsert_event(_event()).value.object_id
    assert object_id is not None
    joined = datetime(2023, 11, 14, 22, 1, tzinfo=UTC)
    registered = client.record_attendance_by_email(
        object_id,
        SubscriberState.REGISTER,
        [
            MarketingEventEmailSubscriber(
                email="jane@example.com",
                interaction_date_time=joined,
                contact_properties={"firstname": "Jane"},
            )
        ],
    )
    assert not registered.value.is_partial
    vid = registered.value.results[0].vid
    assert vid is not None

    attended = client.record_external_attendance(
        SubscriberState.ATTEND,
        [
            MarketingEventSubscriber(
                vid=vid,
                interaction_date_time=joined,
                properties=AttendanceProperties(joined_at=joined),
            )
        ],
        external_event_id="webinar-1",
        external_account_id="acct-1",
    )
    assert [r.vid for r in attended.value.results] == [vid]

    counters = client.get_participation_counters(
        external_account_id="acct-1", external_event_id="webinar-1"
    ).value
    assert counters.attended == 1
    assert client.get_participation_counters_by_object_id(object_id).value == counters

    page = client.get_participation_breakdown(
        external_account_id="acct-1",
        external_event_id="webinar-1",
        state=ParticipationState.ATTENDED,
        limit=10,
    ).value
    assert page.total == 1
    assert page.results[0].associations.contact.contact_id == str(vid)
    assert page.results[0].properties.attendance_state == "ATTENDED"
    by_contact = client.get_contact_participations("jane@example.com").value
    assert by_contact.results[0].associations.marketing_event.marketing_event_id == object_id


def test_list_associations_and_settings(connect: ClientFactory) -> None:
    cfg = _cfg()
    client = connect(cfg)
    object_id = client.upsert_event(_event()).value.object_id
    assert object_id is not None
    ext = {"external_account_id": "acct-1", "external_event_id": "webinar-1"}
    assert client.associate_list(object_id, "42").status == 204
    assert client.associate_list_by_external_id("43", **ext).status == 204
    lists = client.get_associated_lists(object_id).value
    assert sorted(x.list_id for x in lists.results) == ["42", "43"]
    assert client.disassociate_list(object_id, "42").status == 204
    assert client.disassociate_list_by_external_id("43", **ext).status == 204
    assert client.get_associated_lists_by_external_id(**ext).value.results == []

    app_id = cfg.apps[0].app_id
    url = "https://my.event.app/events/%s"
    assert client.update_app_settings(app_id, url).value.event_details_url == url
    assert client.get_app_settings(app_id).value.app_id == app_id


def test_iter_events_follows_sandbox_paging(connect: ClientFactory) -> None:
    client = connect(_cfg())
    created = [client.upsert_event(_event(f"w-{n}")).value.object_id for n in range(3)]
    assert [e.object_id for e in client.iter_events(page_size=1)] == created


# ----------------------------------------------------------------------------- errors


def test_401_unknown_token(connect: ClientFactory) -> None:
    client = connect(_cfg(), token="pat-na1-not-a-real-token-000000000000")
    with pytest.raises(AuthenticationError) as info:
        client.list_events()
    err = info.value
    assert err.status == 401 and err.category == "INVALID_AUTHENTICATION"
    assert err.correlation_id
    assert not is_retriable(err)
    assert "not-a-real-token" not in str(err)


def test_403_missing_write_scope(connect: ClientFactory) -> None:
    reader = AppConfig(
        app_id=2002,
        token="pat-na1-reader-0000-0000-000000002002",
        client_secret="s",
        scopes=frozenset({READ}),
    )
    client = connect(SandboxConfig(apps=(reader,), clock=_clock))
    assert client.list_events().status == 200  # read scope is enough to read
    with pytest.raises(MissingScopesError) as info:
        client.upsert_event(_event())
    assert info.value.status == 403
    assert info.value.category == "MISSING_SCOPES"
    assert info.value.required_scopes == (WRITE,)


def test_404_other_apps_external_event(connect: ClientFactory) -> None:
    one = AppConfig(app_id=3001, token="pat-na1-app-one-0000-0000-000000003001", client_secret="a")
    two = AppConfig(app_id=3002, token="pat-na1-app-two-0000-0000-000000003002", client_secret="b")
    cfg = SandboxConfig(apps=(one, two), clock=_clock)
    app = create_app(cfg)
    owner = connect(cfg, app=app, token=one.token)
    other = connect(cfg, app=app, token=two.token)
    object_id = owner.upsert_event(_event()).value.object_id
    assert object_id is not None
    with pytest.raises(NotFoundError) as info:
        other.get_event(external_account_id="acct-1", external_event_id="webinar-1")
    assert info.value.status == 404 and info.value.correlation_id
    # objectId routes ignore ownership (reference §1)
    assert other.get_event_by_object_id(object_id).value.object_id == object_id


def test_400_validation_names_the_field(connect: ClientFactory) -> None:
    client = connect(_cfg())
    with pytest.raises(ValidationError) as info:
        client.upsert_event(_event(event_name="   "))
    err = info.value
    assert err.status == 400 and err.category == "VALIDATION_ERROR"
    assert [e.in_ for e in err.errors] == ["eventName"]
    assert not is_retriable(err)


def test_409_duplicate_create(connect: ClientFactory) -> None:
    client = connect(_cfg())
    client.create_event(_event())
    with pytest.raises(ConflictError) as info:
        client.create_event(_event())
    assert info.value.status == 409


def test_429_window_limit_with_rate_limit_headers(connect: ClientFactory) -> None:
    client = connect(_cfg(window_limit=2))
    first = client.list_events()
    second = client.list_events()
    assert first.rate_limit is not None and second.rate_limit is not None
    assert (first.rate_limit.max, first.rate_limit.remaining) == (2, 1)
    assert second.rate_limit.remaining == 0 and second.rate_limit.is_interval_exhausted
    assert first.rate_limit.interval_ms == 10_000
    with pytest.raises(RateLimitedError) as info:
        client.list_events()
    err = info.value
    assert err.status == 429
    assert err.policy_name == "TEN_SECONDLY_ROLLING" and not err.is_daily
    assert err.rate_limit is not None and err.rate_limit.remaining == 0
    assert err.retry_after is None  # HubSpot documents no Retry-After on 429; none invented
    assert is_retriable(err)
    assert client.last_rate_limit == err.rate_limit


def test_429_daily_limit(connect: ClientFactory) -> None:
    client = connect(_cfg(daily_limit=1))
    client.list_events()
    with pytest.raises(RateLimitedError) as info:
        client.list_events()
    assert info.value.is_daily
    assert info.value.rate_limit is not None and info.value.rate_limit.daily_remaining == 0


@pytest.mark.parametrize(
    ("status", "cls"),
    [(503, ServerError), (500, ServerError), (423, LockedError), (477, MigrationInProgressError)],
)
def test_injected_error_statuses(connect: ClientFactory, status: int, cls: type) -> None:
    client = connect(_cfg(faults=FaultConfig(error_rate=1.0, error_status=status)))
    with pytest.raises(cls) as info:
        client.list_events()
    assert info.value.status == status
    assert is_retriable(info.value)


def test_injected_storm_and_outage(connect: ClientFactory) -> None:
    storm = connect(_cfg(faults=FaultConfig(storm=Window(start=NOW - 1, duration=10))))
    with pytest.raises(RateLimitedError) as info:
        storm.list_events()
    assert info.value.policy_name == "TEN_SECONDLY_ROLLING"
    outage = connect(_cfg(faults=FaultConfig(outage=Window(start=NOW - 1, duration=10))))
    with pytest.raises(ServerError):
        outage.list_events()


def test_dropped_connection_is_a_retriable_connection_error(connect: ClientFactory) -> None:
    client = connect(_cfg(faults=FaultConfig(drop_rate=1.0)))
    with pytest.raises(HubSpotConnectionError) as info:
        client.list_events()
    assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)
    assert is_retriable(info.value)


# ----------------------------------------------------------------------------- partial batches


def test_207_batch_update_partial_failure(connect: ClientFactory) -> None:
    client = connect(_cfg())
    object_id = client.upsert_event(_event()).value.object_id
    assert object_id is not None
    response = client.batch_update_events(
        [
            MarketingEventPublicUpdateRequestFullV2(object_id=object_id, event_name="New name"),
            MarketingEventPublicUpdateRequestFullV2(object_id="999999999", event_name="Ghost"),
        ]
    )
    assert response.status == 207
    batch = response.value
    assert batch.is_partial and batch.num_errors == 1
    assert [r.object_id for r in batch.results] == [object_id]
    assert batch.errors[0].category == "OBJECT_NOT_FOUND"
    assert batch.errors[0].subject_ids() == ("999999999",)


def test_207_batch_archive_partial_and_204_complete(connect: ClientFactory) -> None:
    client = connect(_cfg())
    a = client.upsert_event(_event("a")).value.object_id
    b = client.upsert_event(_event("b")).value.object_id
    assert a is not None and b is not None
    assert client.batch_archive_events([a]).value is None  # 204: all deleted
    partial = client.batch_archive_events([b, "123456789"])
    assert partial.status == 207
    assert partial.value is not None and partial.value.error_count == 1
    assert partial.value.errors[0].subject_ids() == ("123456789",)


def test_batch_upsert_and_per_input_injected_failures(connect: ClientFactory) -> None:
    faults = FaultConfig(seed=7, batch_input_failure_rate=0.5)
    client = connect(_cfg(faults=faults))
    events = [_event(f"w-{n}") for n in range(10)]
    batch = client.batch_upsert_events(events).value
    failed = {i for e in batch.errors for i in e.subject_ids()}
    succeeded = {
        client.get_event_by_object_id(r.object_id or "").value.external_event_id
        for r in batch.results
    }
    assert batch.error_count == len(batch.errors) == len(failed) > 0
    assert failed.isdisjoint(succeeded)
    assert failed | succeeded == {f"w-{n}" for n in range(10)}
    assert all(e.category == "INTERNAL_ERROR" for e in batch.errors)


def test_attendance_unknown_contact_is_a_per_input_error(connect: ClientFactory) -> None:
    client = connect(_cfg())
    object_id = client.upsert_event(_event()).value.object_id
    assert object_id is not None
    known = (
        client.record_attendance_by_email(
            object_id,
            SubscriberState.REGISTER,
            [
                MarketingEventEmailSubscriber(
                    email="known@example.com", interaction_date_time=NOW_MS
                )
            ],
        )
        .value.results[0]
        .vid
    )
    assert known is not None
    response = client.record_attendance(
        object_id,
        SubscriberState.ATTEND,
        [
            MarketingEventSubscriber(vid=known, interaction_date_time=NOW_MS),
            MarketingEventSubscriber(vid=424242, interaction_date_time=NOW_MS),
        ],
    )
    batch = response.value
    assert [r.vid for r in batch.results] == [known]
    assert batch.error_count == 1
    assert batch.errors[0].subject_ids() == ("424242",)


# ----------------------------------------------------------------------------- signed callback


@dataclass
class CallbackApp:
    """The webinar platform's eventDetailsUrl endpoint, verifying HubSpot's signature."""

    client_secret: str
    now_ms: int
    seen: list[tuple[str, Any]] = field(default_factory=list)

    def asgi(self) -> Starlette:
        async def details(request: Request) -> JSONResponse:
            body = await request.body()
            try:
                version = verify_request(
                    self.client_secret,
                    method=request.method,
                    uri=str(request.url),
                    body=body,
                    headers=request.headers,
                    now_ms=lambda: self.now_ms,
                )
            except SignatureError as exc:
                self.seen.append(("rejected", exc.reason))
                return JSONResponse({"message": "invalid signature"}, status_code=401)
            self.seen.append(
                ("verified", (version, request.path_params["event_id"], dict(request.query_params)))
            )
            return JSONResponse(
                {
                    "eventName": "From the platform",
                    "eventOrganizer": "Platform",
                    "eventType": "WEBINAR",
                }
            )

        return Starlette(routes=[Route("/events/{event_id}", details)])


def _callback_setup(
    connect: ClientFactory, verifier_now_ms: int, secret: str | None = None
) -> tuple[HubSpotClient, CallbackApp, SandboxConfig]:
    cfg = _cfg()
    callback = CallbackApp(secret or cfg.apps[0].client_secret, verifier_now_ms)
    client = connect(cfg, callback_transport=httpx.ASGITransport(app=callback.asgi()))
    client.update_app_settings(cfg.apps[0].app_id, "https://my.event.app/events/%s")
    return client, callback, cfg


def _register_unknown_event(client: HubSpotClient) -> Any:
    return client.record_external_attendance_by_email(
        SubscriberState.REGISTER,
        [MarketingEventEmailSubscriber(email="jane@example.com", interaction_date_time=NOW_MS)],
        external_event_id="webinar-42",
        external_account_id="acct-1",
    )


def test_signed_event_details_callback_end_to_end(connect: ClientFactory) -> None:
    client, callback, cfg = _callback_setup(connect, NOW_MS + 1_000)
    response = _register_unknown_event(client)
    assert not response.value.is_partial
    assert callback.seen == [
        (
            "verified",
            (3, "webinar-42", {"appId": str(cfg.apps[0].app_id), "externalAccountId": "acct-1"}),
        ),
    ]
    event = client.get_event(external_account_id="acct-1", external_event_id="webinar-42").value
    assert event.event_name == "From the platform"
    assert event.event_organizer == "Platform"


def test_stale_callback_signature_rejected_by_window(connect: ClientFactory) -> None:
    client, callback, _ = _callback_setup(connect, NOW_MS + 300_001)
    with pytest.raises(NotFoundError):
        _register_unknown_event(client)
    assert callback.seen == [("rejected", "expired")]


def test_callback_signed_with_another_secret_rejected(connect: ClientFactory) -> None:
    client, callback, _ = _callback_setup(connect, NOW_MS, secret="not-the-app-secret")
    with pytest.raises(NotFoundError):
        _register_unknown_event(client)
    assert callback.seen == [("rejected", "mismatch")]
