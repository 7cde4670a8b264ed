"""HubSpot's official Python SDK (hubspot-api-client) against the uvicorn-served sandbox.

The SDK deserialises every answer into its generated models (with client-side validation of
required fields), so a shape the SDK cannot read fails here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInputForCreate
from hubspot.marketing.events import (
    BatchInputMarketingEventCreateRequestParams,
    BatchInputMarketingEventEmailSubscriber,
    BatchInputMarketingEventExternalUniqueIdentifier,
    BatchInputMarketingEventPublicObjectIdDeleteRequest,
    BatchInputMarketingEventPublicUpdateRequestFullV2,
    BatchInputMarketingEventSubscriber,
    EventDetailSettingsUrl,
    MarketingEventCompleteRequestParams,
    MarketingEventCreateRequestParams,
    MarketingEventEmailSubscriber,
    MarketingEventExternalUniqueIdentifier,
    MarketingEventPublicObjectIdDeleteRequest,
    MarketingEventPublicUpdateRequestFullV2,
    MarketingEventPublicUpdateRequestV2,
    MarketingEventSubscriber,
    MarketingEventUpdateRequestParams,
)
from hubspot.marketing.events.exceptions import (
    ApiException,
    ForbiddenException,
    NotFoundException,
    UnauthorizedException,
)

from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.server import serve_in_thread
from tests.contract.conftest import OTHER_APP, READ_ONLY_APP

ACCOUNT = "acct-1"
T0 = 1_716_382_579_000  # interactionDateTime, epoch ms


def sdk(url: str, token: str) -> HubSpot:
    """The official client pointed at the sandbox."""
    return HubSpot(access_token=token, host=url)


@pytest.fixture
def hs(sandbox_url: str, sandbox_config: SandboxConfig) -> HubSpot:
    return sdk(sandbox_url, sandbox_config.apps[0].token)


def _create(hs: HubSpot, external_id: str = "ev-1", **fields: object) -> str:
    params = MarketingEventCreateRequestParams(
        external_account_id=ACCOUNT,
        external_event_id=external_id,
        event_name=fields.pop("event_name", "Winter webinar"),
        event_organizer="Snowman Fellowship",
        custom_properties=[],
        **fields,
    )
    created = hs.marketing.events.basic_api.create(params)
    assert created.object_id and created.object_id.isdigit()
    return str(created.object_id)


def _body(exc: ApiException) -> dict[str, object]:
    return json.loads(exc.body)


def test_create_get_update_delete_by_external_ids(hs: HubSpot) -> None:
    api = hs.marketing.events.basic_api
    start = datetime(2024, 8, 7, 12, 36, 59, 286000, tzinfo=UTC)
    created = api.create(
        MarketingEventCreateRequestParams(
            external_account_id=ACCOUNT,
            external_event_id="ev-1",
            event_name="Winter webinar",
            event_organizer="Snowman Fellowship",
            event_type="WEBINAR",
            start_date_time=start,
            custom_properties=[{"name": "test_name", "value": "Custom Value"}],
        )
    )
    assert created.event_name == "Winter webinar" and created.event_completed is False
    assert created.start_date_time == start
    assert created.custom_properties[0].name == "test_name"
    assert created.custom_properties[0].value == "Custom Value"

    got = api.get_details("ev-1", ACCOUNT)
    assert got.id == got.object_id == created.object_id
    assert got.external_event_id == "ev-1"
    assert (got.registrants, got.attendees, got.cancellations, got.no_shows) == (0, 0, 0, 0)

    patched = api.update(
        "ev-1",
        ACCOUNT,
        MarketingEventUpdateRequestParams(event_name="Spring webinar", custom_properties=[]),
    )
    assert patched.event_name == "Spring webinar" and patched.event_type == "WEBINAR"

    upserted = api.upsert(
        "ev-1",
        MarketingEventCreateRequestParams(
            external_account_id=ACCOUNT,
            external_event_id="ev-1",
            event_name="Summer webinar",
            event_organizer="Sun",
            custom_properties=[],
        ),
    )
    assert upserted.id == created.object_id and upserted.event_organizer == "Sun"
    fresh = api.upsert(
        "ev-2",
        MarketingEventCreateRequestParams(
            external_account_id=ACCOUNT,
            external_event_id="ev-2",
            event_name="New",
            event_organizer="Org",
            custom_properties=[],
        ),
    )
    assert fresh.id != created.object_id

    api.archive("ev-1", ACCOUNT)
    with pytest.raises(NotFoundException) as info:
        api.get_details("ev-1", ACCOUNT)
    assert _body(info.value)["category"] == "OBJECT_NOT_FOUND"


def test_complete_and_cancel(hs: HubSpot) -> None:
    _create(hs, "ev-c")
    _create(hs, "ev-x")
    props = hs.marketing.events.change_property_api
    done = props.complete(
        "ev-c",
        ACCOUNT,
        MarketingEventCompleteRequestParams(
            start_date_time=datetime(2024, 1, 1, 10, tzinfo=UTC),
            end_date_time=datetime(2024, 1, 1, 11, tzinfo=UTC),
        ),
    )
    assert done.event_completed is True
    assert done.end_date_time == datetime(2024, 1, 1, 11, tzinfo=UTC)
    cancelled = props.cancel("ev-x", ACCOUNT)
    assert cancelled.event_cancelled is True
    by_id = hs.marketing.events.basic_api.get_by_object_id(cancelled.object_id)
    assert by_id.event_status == "CANCELLED"


def test_list_paging_and_object_id_crud(hs: HubSpot) -> None:
    ids = [_create(hs, f"ev-{n}") for n in range(3)]
    api = hs.marketing.events.basic_api
    first = api.get_all(limit=2)
    assert [e.object_id for e in first.results] == ids[:2]
    assert first.paging.next.after and first.paging.next.link.startswith("http")
    second = api.get_all(limit=2, after=first.paging.next.after)
    assert [e.object_id for e in second.results] == ids[2:] and second.paging is None

    read = api.get_by_object_id(ids[0])
    assert read.app_info.id == "1001" and read.external_event_id == "ev-0"
    updated = api.update_by_object_id(
        ids[0],
        MarketingEventPublicUpdateRequestV2(
            event_name="Renamed", custom_properties=[{"name": "k", "value": "v"}]
        ),
    )
    assert updated.event_name == "Renamed" and updated.custom_properties[0].value == "v"
    api.archive_by_object_id(ids[0])
    with pytest.raises(NotFoundException):
        api.get_by_object_id(ids[0])
    with pytest.raises(NotFoundException):
        api.archive_by_object_id("999999")


def test_batch_upsert_update_archive_and_delete(hs: HubSpot, sandbox_url: str) -> None:
    batch = hs.marketing.events.batch_api
    upserted = batch.upsert(
        BatchInputMarketingEventCreateRequestParams(
            inputs=[
                MarketingEventCreateRequestParams(
                    external_account_id=ACCOUNT,
                    external_event_id=f"b-{n}",
                    event_name=f"B{n}",
                    event_organizer="Org",
                    custom_properties=[],
                )
                for n in range(3)
            ]
        )
    )
    assert upserted.status == "COMPLETE" and len(upserted.results) == 3
    assert upserted.num_errors is None
    ids = [r.object_id for r in upserted.results]

    updated = batch.update_by_object_id(
        BatchInputMarketingEventPublicUpdateRequestFullV2(
            inputs=[
                MarketingEventPublicUpdateRequestFullV2(
                    object_id=ids[0], event_name="B0!", custom_properties=[]
                ),
            ]
        )
    )
    assert [r.event_name for r in updated.results] == ["B0!"]

    # 207: one id exists, one does not
    partial = batch.update_by_object_id_with_http_info(
        BatchInputMarketingEventPublicUpdateRequestFullV2(
            inputs=[
                MarketingEventPublicUpdateRequestFullV2(
                    object_id=ids[1], event_name="B1!", custom_properties=[]
                ),
                MarketingEventPublicUpdateRequestFullV2(object_id="404404", custom_properties=[]),
            ]
        )
    )
    body, status, _ = partial
    assert status == 207 and body.num_errors == 1 and len(body.results) == 1
    assert body.errors[0].category == "OBJECT_NOT_FOUND"
    assert body.errors[0].context == {"ids": ["404404"]}

    _, status, _ = batch.archive_by_object_id_with_http_info(
        BatchInputMarketingEventPublicObjectIdDeleteRequest(
            inputs=[
                MarketingEventPublicObjectIdDeleteRequest(object_id=ids[0]),
                MarketingEventPublicObjectIdDeleteRequest(object_id="404404"),
            ]
        )
    )
    assert status == 207
    _, status, _ = batch.archive_by_object_id_with_http_info(
        BatchInputMarketingEventPublicObjectIdDeleteRequest(
            inputs=[MarketingEventPublicObjectIdDeleteRequest(object_id=ids[1])]
        )
    )
    assert status == 204

    _, status, _ = batch.archive_with_http_info(
        BatchInputMarketingEventExternalUniqueIdentifier(
            inputs=[
                MarketingEventExternalUniqueIdentifier(
                    app_id=1001, external_account_id=ACCOUNT, external_event_id="b-2"
                )
            ]
        )
    )
    assert status == 202
    assert httpx.get(f"{sandbox_url}/_sandbox/events").json() == []


def test_identifier_search_and_portal_lookup(hs: HubSpot, sandbox_url: str) -> None:
    object_id = _create(hs, "shared-id")
    other = sdk(sandbox_url, OTHER_APP.token)
    other_id = _create(other, "shared-id")
    found = hs.marketing.events.identifiers_api.do_search("shared-id")
    assert [(r.object_id, r.app_id) for r in found.results] == [(object_id, 1001)]
    portal = hs.marketing.events.identifiers_api.search_portal_events("shared-id")
    assert portal.total == 2
    assert {(r.object_id, r.app_info.id) for r in portal.results} == {
        (object_id, "1001"),
        (other_id, "2002"),
    }


def test_attendance_participations_and_counters(hs: HubSpot) -> None:
    object_id = _create(hs, "ev-a")
    contact = hs.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={"email": "known@example.com", "firstname": "Kay"}
        )
    )
    vid = int(contact.id)
    attendees = hs.marketing.events.add_event_attendees_api

    by_email = attendees.record_by_contact_emails(
        "ev-a",
        "register",
        BatchInputMarketingEventEmailSubscriber(
            inputs=[
                MarketingEventEmailSubscriber(
                    email="new@example.com",
                    interaction_date_time=T0,
                    contact_properties={"firstname": "Nia"},
                    properties={},
                ),
                MarketingEventEmailSubscriber(
                    email="known@example.com",
                    interaction_date_time=T0,
                    contact_properties={"firstname": "Ignored"},
                    properties={},
                ),
            ]
        ),
        external_account_id=ACCOUNT,
    )
    assert by_email.status == "COMPLETE" and [r.email for r in by_email.results] == [
        "new@example.com",
        "known@example.com",
    ]
    assert by_email.results[1].vid == vid
    kept = hs.crm.contacts.basic_api.get_by_id(
        "known@example.com", id_property="email", properties=["firstname"]
    )
    assert kept.properties["firstname"] == "Kay"  # contactProperties only on creation

    attended = attendees.record_by_contact_id(
        object_id,
        "attend",
        BatchInputMarketingEventSubscriber(
            inputs=[
                MarketingEventSubscriber(
                    vid=vid,
                    interaction_date_time=T0 + 1000,
                    properties={
                        "joinedAt": "2024-05-22T13:38:16.500Z",
                        "leftAt": "2024-05-22T15:40:16.500Z",
                    },
                ),
                MarketingEventSubscriber(vid=123, interaction_date_time=T0, properties={}),
            ]
        ),
    )
    assert [r.vid for r in attended.results] == [vid]
    assert attended.num_errors == 1 and attended.errors[0].category == "OBJECT_NOT_FOUND"

    attendees.record_by_contact_ids(
        "ev-a",
        "cancel",
        BatchInputMarketingEventSubscriber(
            inputs=[
                MarketingEventSubscriber(vid=by_email.results[0].vid, interaction_date_time=T0 + 5)
            ]
        ),
        external_account_id=ACCOUNT,
    )
    attendees.record_by_email(
        object_id,
        "register",
        BatchInputMarketingEventEmailSubscriber(
            inputs=[
                MarketingEventEmailSubscriber(email="third@example.com", interaction_date_time=T0)
            ]
        ),
    )

    state = hs.marketing.events.retrieve_participant_state_api
    counters = state.get_participations_counters_by_event_external_id(ACCOUNT, "ev-a")
    assert (counters.registered, counters.attended, counters.cancelled, counters.no_shows) == (
        1,
        1,
        1,
        0,
    )
    assert state.get_participations_counters_by_marketing_event_id(int(object_id)) == counters

    page = state.get_participations_breakdown_by_external_event_id(ACCOUNT, "ev-a", limit=2)
    assert page.total == 3 and len(page.results) == 2 and page.paging.next.after
    rest = state.get_participations_breakdown_by_marketing_event_id(
        int(object_id), limit=2, after=page.paging.next.after
    )
    assert len(rest.results) == 1 and rest.paging is None
    only = state.get_participations_breakdown_by_marketing_event_id(
        int(object_id), state="ATTENDED"
    )
    row = only.results[0]
    assert only.total == 1 and row.properties.attendance_state == "ATTENDED"
    assert row.properties.attendance_duration_seconds == 7320
    assert row.properties.occurred_at == T0 + 1000
    assert row.associations.contact.email == "known@example.com"
    assert row.associations.marketing_event.external_event_id == "ev-a"
    filtered = state.get_participations_breakdown_by_external_event_id(
        ACCOUNT, "ev-a", contact_identifier="third@example.com"
    )
    assert [r.properties.attendance_state for r in filtered.results] == ["REGISTERED"]

    mine = state.get_participations_breakdown_by_contact_id("known@example.com")
    assert mine.total == 1 and mine.results[0].associations.marketing_event.marketing_event_id == (
        object_id
    )

    # complete the event: the registered-but-never-attended contact becomes a no-show
    hs.marketing.events.change_property_api.complete(
        "ev-a",
        ACCOUNT,
        MarketingEventCompleteRequestParams(
            start_date_time=datetime(2024, 5, 22, 13, tzinfo=UTC),
            end_date_time=datetime(2024, 5, 22, 16, tzinfo=UTC),
        ),
    )
    after = state.get_participations_counters_by_marketing_event_id(int(object_id))
    assert (after.registered, after.attended, after.cancelled, after.no_shows) == (0, 1, 1, 1)
    read = hs.marketing.events.basic_api.get_details("ev-a", ACCOUNT)
    assert (read.registrants, read.attendees, read.cancellations, read.no_shows) == (0, 1, 1, 1)


def test_legacy_subscriber_state_upserts(hs: HubSpot) -> None:
    _create(hs, "ev-l")
    contact = hs.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": "legacy@example.com"})
    )
    legacy = hs.marketing.events.subscriber_state_changes_api
    legacy.upsert_by_contact_id(
        "ev-l",
        "register",
        ACCOUNT,
        BatchInputMarketingEventSubscriber(
            inputs=[MarketingEventSubscriber(vid=int(contact.id), interaction_date_time=T0)]
        ),
    )
    legacy.upsert_by_contact_email(
        "ev-l",
        "attend",
        ACCOUNT,
        BatchInputMarketingEventEmailSubscriber(
            inputs=[
                MarketingEventEmailSubscriber(
                    email="legacy@example.com", interaction_date_time=T0 + 1
                ),
                MarketingEventEmailSubscriber(email="nobody@example.com", interaction_date_time=T0),
            ]
        ),
    )
    state = hs.marketing.events.retrieve_participant_state_api
    counters = state.get_participations_counters_by_event_external_id(ACCOUNT, "ev-l")
    assert (counters.attended, counters.registered) == (1, 0)  # unknown email not created


def test_list_associations(hs: HubSpot) -> None:
    object_id = _create(hs, "ev-lists")
    lists = hs.marketing.events.list_associations_api
    lists.associate_by_marketing_event_id(object_id, "101")
    lists.associate_by_external_account_and_event_ids(ACCOUNT, "ev-lists", "102")
    got = lists.get_all_by_external_account_and_event_ids(ACCOUNT, "ev-lists")
    assert got.total == 2 and [x.list_id for x in got.results] == ["101", "102"]
    assert got.results[0].processing_status == "COMPLETE"
    lists.disassociate_by_external_account_and_event_ids(ACCOUNT, "ev-lists", "101")
    lists.disassociate_by_marketing_event_id(object_id, "102")
    assert lists.get_all_by_marketing_event_id(object_id).total == 0


def test_settings_with_developer_key(sandbox_url: str, sandbox_config: SandboxConfig) -> None:
    app = sandbox_config.apps[0]
    dev = HubSpot(api_key=app.developer_api_key, host=sandbox_url)
    with pytest.raises(NotFoundException):
        dev.marketing.events.settings_api.get_all(app.app_id)
    saved = dev.marketing.events.settings_api.update(
        app.app_id, EventDetailSettingsUrl(event_details_url="https://my.event.app/events/%s")
    )
    assert saved.app_id == app.app_id
    assert dev.marketing.events.settings_api.get_all(app.app_id).event_details_url == (
        "https://my.event.app/events/%s"
    )
    with pytest.raises(ApiException) as info:
        dev.marketing.events.settings_api.update(
            app.app_id, EventDetailSettingsUrl(event_details_url="https://no-placeholder")
        )
    assert info.value.status == 400


def test_401_for_missing_or_unknown_token(sandbox_url: str) -> None:
    with pytest.raises(UnauthorizedException) as info:
        sdk(sandbox_url, "not-a-token").marketing.events.basic_api.get_all()
    body = _body(info.value)
    assert body["category"] == "INVALID_AUTHENTICATION" and body["status"] == "error"
    answer = httpx.get(f"{sandbox_url}/marketing/v3/marketing-events/")
    assert answer.status_code == 401


def test_403_missing_scopes(sandbox_url: str) -> None:
    reader = sdk(sandbox_url, READ_ONLY_APP.token)
    assert reader.marketing.events.basic_api.get_all().results == []
    with pytest.raises(ForbiddenException) as info:
        _create(reader, "nope")
    body = _body(info.value)
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"] == {
        "requiredGranularScopes": ["crm.objects.marketing_events.write"]
    }


def test_404_for_another_apps_external_ids_but_object_id_works(
    hs: HubSpot, sandbox_url: str
) -> None:
    object_id = _create(hs, "mine")
    other = sdk(sandbox_url, OTHER_APP.token)
    with pytest.raises(NotFoundException):
        other.marketing.events.basic_api.get_details("mine", ACCOUNT)
    assert other.marketing.events.basic_api.get_by_object_id(object_id).external_event_id == "mine"


@pytest.fixture
def limited_url() -> Iterator[str]:
    """A separate sandbox: 3 requests per window, frozen clock (the window never rolls)."""
    cfg = SandboxConfig.default(window_limit=3, daily_limit=1000, clock=lambda: 1_700_000_000.0)
    with serve_in_thread(create_app(cfg)) as running:
        yield running.url


def test_429_with_rate_limit_headers(limited_url: str) -> None:
    token = SandboxConfig.default().apps[0].token
    api = sdk(limited_url, token).marketing.events.basic_api
    for _ in range(3):
        _, status, headers = api.get_all_with_http_info()
        assert status == 200
    assert headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert headers["X-HubSpot-RateLimit-Max"] == "3"
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert headers["X-HubSpot-RateLimit-Daily-Remaining"] == "997"
    with pytest.raises(ApiException) as info:
        api.get_all()
    assert info.value.status == 429
    body = _body(info.value)
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert info.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    stats = httpx.get(f"{limited_url}/_sandbox/counters").json()
    assert stats["rateLimited"] == 1 and stats["rateLimitedByPolicy"] == {"TEN_SECONDLY_ROLLING": 1}
