"""Every operation of the route table (reference §0): method, path, query and body, exactly."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from connector.hubspot import (
    AttendanceProperties,
    CustomProperty,
    HubSpotClient,
    MarketingEventCreateRequestParams,
    MarketingEventEmailSubscriber,
    MarketingEventExternalUniqueIdentifier,
    MarketingEventPublicUpdateRequestFullV2,
    MarketingEventPublicUpdateRequestV2,
    MarketingEventSubscriber,
    MarketingEventUpdateRequestParams,
    ParticipationState,
    SubscriberState,
)

P = "/marketing/v3/marketing-events"
T0 = datetime(2024, 8, 7, 12, 36, 59, 286000, tzinfo=UTC)
T1 = datetime(2024, 8, 7, 13, 36, 59, 286000, tzinfo=UTC)
STAMPS = {"createdAt": "2024-08-07T12:58:40.635Z", "updatedAt": "2024-08-07T12:58:40.635Z"}
EVENT_V1 = {"objectId": "9", "eventName": "W", "eventOrganizer": "O", "customProperties": []}
EVENT_PUBLIC = {**EVENT_V1, "id": "9", **STAMPS}
EVENT_READ = {
    **EVENT_PUBLIC,
    "externalEventId": "evt",
    "registrants": 1,
    "attendees": 0,
    "cancellations": 0,
    "noShows": 0,
}
EVENT_V2 = {
    "objectId": "9",
    "eventName": "W",
    "customProperties": [],
    **STAMPS,
    "appInfo": {"id": "1001", "name": "App"},
}
BATCH = {
    "status": "COMPLETE",
    "startedAt": "2024-08-07T12:58:40.000Z",
    "completedAt": "2024-08-07T12:58:41.000Z",
}
BREAKDOWN = {
    "total": 1,
    "results": [
        {
            "id": "p1",
            "createdAt": "2024-05-21T18:35:04.838Z",
            "associations": {
                "marketingEvent": {
                    "marketingEventId": "123",
                    "name": "Virtual baking workshop",
                    "externalAccountId": "4",
                    "externalEventId": "456",
                },
                "contact": {
                    "contactId": "156792341",
                    "email": "jdoe@example.com",
                    "firstname": "Jane",
                },
            },
            "properties": {
                "attendanceState": "REGISTERED",
                "occurredAt": 1716374104838,
                "attendanceDurationSeconds": 3600,
            },
        }
    ],
}
LISTS = {
    "total": 1,
    "results": [
        {
            "listId": "42",
            "listVersion": 1,
            "name": "Attendees",
            "objectTypeId": "0-1",
            "processingStatus": "COMPLETE",
            "processingType": "MANUAL",
        }
    ],
}
CREATE = MarketingEventCreateRequestParams(
    external_account_id="acct",
    external_event_id="evt",
    event_name="Winter webinar",
    event_organizer="Snowman Fellowship",
    event_type="WEBINAR",
    start_date_time=T0,
    end_date_time=T1,
    event_url="https://example.com/holiday-jam",
    event_cancelled=False,
    event_completed=False,
    custom_properties=[CustomProperty(name="test_name", value="Custom Value")],
)
CREATE_WIRE = {
    "externalAccountId": "acct",
    "externalEventId": "evt",
    "eventName": "Winter webinar",
    "eventOrganizer": "Snowman Fellowship",
    "eventType": "WEBINAR",
    "startDateTime": "2024-08-07T12:36:59.286Z",
    "endDateTime": "2024-08-07T13:36:59.286Z",
    "eventUrl": "https://example.com/holiday-jam",
    "eventCancelled": False,
    "eventCompleted": False,
    "customProperties": [{"name": "test_name", "value": "Custom Value"}],
}
VID = MarketingEventSubscriber(
    vid=47733471576,
    interaction_date_time=1716382579000,
    properties=AttendanceProperties(
        joined_at=datetime(2024, 5, 22, 13, 38, 16, 500000, tzinfo=UTC),
        left_at=datetime(2024, 5, 22, 15, 40, 16, 500000, tzinfo=UTC),
    ),
)
VID_WIRE = {
    "vid": 47733471576,
    "interactionDateTime": 1716382579000,
    "properties": {"joinedAt": "2024-05-22T13:38:16.500Z", "leftAt": "2024-05-22T15:40:16.500Z"},
}
EMAIL = MarketingEventEmailSubscriber(
    email="john@example.com",
    interaction_date_time=datetime(2024, 5, 22, 13, 36, 19, tzinfo=UTC),
    contact_properties={"firstname": "John"},
)
EMAIL_WIRE = {
    "email": "john@example.com",
    "interactionDateTime": 1716384979000,
    "contactProperties": {"firstname": "John"},
}
EXT = {"external_account_id": "acct", "external_event_id": "evt"}


@dataclass(frozen=True)
class Case:
    """One operation: the call, the exact request, a realistic response, a check on the value."""

    call: Callable[[HubSpotClient], Any]
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 200
    answer: Any = None
    check: Callable[[Any], bool] = lambda value: True


CASES: dict[str, Case] = {
    "1 create": Case(
        lambda c: c.create_event(CREATE),
        "POST",
        f"{P}/events",
        {},
        CREATE_WIRE,
        answer=EVENT_V1,
        check=lambda v: v.object_id == "9",
    ),
    "2 upsert": Case(
        lambda c: c.upsert_event(CREATE),
        "PUT",
        f"{P}/events/evt",
        {},
        CREATE_WIRE,
        answer=EVENT_PUBLIC,
        check=lambda v: v.id == "9",
    ),
    "3 get": Case(
        lambda c: c.get_event(**EXT),
        "GET",
        f"{P}/events/evt",
        {"externalAccountId": "acct"},
        None,
        answer=EVENT_READ,
        check=lambda v: v.registrants == 1 and v.external_event_id == "evt",
    ),
    "4 patch": Case(
        lambda c: c.update_event(MarketingEventUpdateRequestParams(event_name="N"), **EXT),
        "PATCH",
        f"{P}/events/evt",
        {"externalAccountId": "acct"},
        {"eventName": "N", "customProperties": []},
        answer=EVENT_PUBLIC,
    ),
    "5 delete": Case(
        lambda c: c.delete_event(**EXT),
        "DELETE",
        f"{P}/events/evt",
        {"externalAccountId": "acct"},
        None,
        status=204,
        check=lambda v: v is None,
    ),
    "6 complete": Case(
        lambda c: c.complete_event(**EXT, start_date_time=T0, end_date_time=T1),
        "POST",
        f"{P}/events/evt/complete",
        {"externalAccountId": "acct"},
        {"startDateTime": "2024-08-07T12:36:59.286Z", "endDateTime": "2024-08-07T13:36:59.286Z"},
        answer={**EVENT_V1, "eventCompleted": True},
        check=lambda v: v.event_completed,
    ),
    "7 cancel": Case(
        lambda c: c.cancel_event(**EXT),
        "POST",
        f"{P}/events/evt/cancel",
        {"externalAccountId": "acct"},
        None,
        answer={**EVENT_V1, "eventCancelled": True},
        check=lambda v: v.event_cancelled,
    ),
    "8 list": Case(
        lambda c: c.list_events(after="NTU1", limit=10),
        "GET",
        f"{P}/",
        {"after": "NTU1", "limit": "10"},
        None,
        answer={
            "results": [{**EVENT_V2, "eventStatus": "ONGOING", "eventStatusV2": "ongoing"}],
            "paging": {"next": {"after": "NTU2"}},
        },
        check=lambda v: v.next_after == "NTU2" and v.results[0].event_status_v2 == "ongoing",
    ),
    "9 get by id": Case(
        lambda c: c.get_event_by_object_id("9"),
        "GET",
        f"{P}/9",
        {},
        None,
        answer=EVENT_V2,
        check=lambda v: v.app_info.id == "1001",
    ),
    "10 patch by id": Case(
        lambda c: c.update_event_by_object_id(
            "9",
            MarketingEventPublicUpdateRequestV2(
                event_cancelled=True, custom_properties=[CustomProperty(name="a", value="b")]
            ),
        ),
        "PATCH",
        f"{P}/9",
        {},
        {"eventCancelled": True, "customProperties": [{"name": "a", "value": "b"}]},
        answer=EVENT_V2,
    ),
    "11 delete by id": Case(
        lambda c: c.delete_event_by_object_id("9"), "DELETE", f"{P}/9", {}, None, status=204
    ),
    "12 batch upsert": Case(
        lambda c: c.batch_upsert_events([CREATE]),
        "POST",
        f"{P}/events/upsert",
        {},
        {"inputs": [CREATE_WIRE]},
        answer={**BATCH, "results": [EVENT_PUBLIC]},
        check=lambda v: not v.is_partial and v.results[0].id == "9",
    ),
    "13 batch delete": Case(
        lambda c: c.batch_delete_events(
            [
                MarketingEventExternalUniqueIdentifier(
                    app_id=1001, external_account_id="acct", external_event_id="evt"
                )
            ]
        ),
        "POST",
        f"{P}/events/delete",
        {},
        {"inputs": [{"appId": 1001, "externalAccountId": "acct", "externalEventId": "evt"}]},
        status=202,
        check=lambda v: v is None,
    ),
    "14 batch update": Case(
        lambda c: c.batch_update_events(
            [MarketingEventPublicUpdateRequestFullV2(object_id="9", event_name="N")]
        ),
        "POST",
        f"{P}/batch/update",
        {},
        {"inputs": [{"objectId": "9", "eventName": "N", "customProperties": []}]},
        answer={**BATCH, "results": [EVENT_V2]},
    ),
    "15 batch archive": Case(
        lambda c: c.batch_archive_events(["9", "10"]),
        "POST",
        f"{P}/batch/archive",
        {},
        {"inputs": [{"objectId": "9"}, {"objectId": "10"}]},
        status=204,
        check=lambda v: v is None,
    ),
    "16 search": Case(
        lambda c: c.search_events("evt"),
        "GET",
        f"{P}/events/search",
        {"q": "evt"},
        None,
        answer={
            "results": [
                {
                    "appId": 1001,
                    "externalAccountId": "acct",
                    "externalEventId": "evt",
                    "objectId": "9",
                }
            ]
        },
        check=lambda v: v.results[0].app_id == 1001,
    ),
    "17 identifiers": Case(
        lambda c: c.find_event_identifiers("evt"),
        "GET",
        f"{P}/evt/identifiers",
        {},
        None,
        answer={
            "total": 1,
            "results": [
                {
                    "externalEventId": "evt",
                    "marketingEventName": "W",
                    "objectId": "9",
                    "appInfo": {"id": "1001", "name": "App"},
                    "externalAccountId": "acct",
                }
            ],
        },
        check=lambda v: v.total == 1 and v.results[0].object_id == "9",
    ),
    "18 attendance vid": Case(
        lambda c: c.record_attendance("9", SubscriberState.ATTEND, [VID]),
        "POST",
        f"{P}/9/attendance/attend/create",
        {},
        {"inputs": [VID_WIRE]},
        answer={**BATCH, "results": [{"vid": 47733471576}]},
        check=lambda v: v.results[0].vid == 47733471576,
    ),
    "19 attendance email": Case(
        lambda c: c.record_attendance_by_email("9", SubscriberState.REGISTER, [EMAIL]),
        "POST",
        f"{P}/9/attendance/register/email-create",
        {},
        {"inputs": [EMAIL_WIRE]},
        answer={**BATCH, "results": [{"email": "john@example.com", "vid": 5}]},
        check=lambda v: v.results[0].vid == 5,
    ),
    "20 ext attendance vid": Case(
        lambda c: c.record_external_attendance(SubscriberState.CANCEL, [VID], **EXT),
        "POST",
        f"{P}/attendance/evt/cancel/create",
        {"externalAccountId": "acct"},
        {"inputs": [VID_WIRE]},
        answer={**BATCH, "results": [{"vid": 47733471576}]},
    ),
    "20 ext attendance vid, no account": Case(
        lambda c: c.record_external_attendance(
            SubscriberState.CANCEL, [VID], external_event_id="evt"
        ),
        "POST",
        f"{P}/attendance/evt/cancel/create",
        {},
        {"inputs": [VID_WIRE]},
        answer={**BATCH, "results": []},
    ),
    "21 ext attendance email": Case(
        lambda c: c.record_external_attendance_by_email(SubscriberState.ATTEND, [EMAIL], **EXT),
        "POST",
        f"{P}/attendance/evt/attend/email-create",
        {"externalAccountId": "acct"},
        {"inputs": [EMAIL_WIRE]},
        answer={**BATCH, "results": [{"email": "john@example.com", "vid": 5}]},
    ),
    "22 legacy upsert": Case(
        lambda c: c.upsert_subscriber_state(SubscriberState.REGISTER, [VID], **EXT),
        "POST",
        f"{P}/events/evt/register/upsert",
        {"externalAccountId": "acct"},
        {"inputs": [VID_WIRE]},
        status=204,
        check=lambda v: v is None,
    ),
    "23 legacy email-upsert": Case(
        lambda c: c.upsert_subscriber_state_by_email(SubscriberState.REGISTER, [EMAIL], **EXT),
        "POST",
        f"{P}/events/evt/register/email-upsert",
        {"externalAccountId": "acct"},
        {"inputs": [EMAIL_WIRE]},
        status=200,
        answer={"ok": True},
        check=lambda v: v is None,
    ),
    "24 counters ext": Case(
        lambda c: c.get_participation_counters(**EXT),
        "GET",
        f"{P}/participations/acct/evt",
        {},
        None,
        answer={"attended": 152, "registered": 200, "cancelled": 3, "noShows": 8},
        check=lambda v: (v.attended, v.registered, v.cancelled, v.no_shows) == (152, 200, 3, 8),
    ),
    "25 counters id": Case(
        lambda c: c.get_participation_counters_by_object_id(123),
        "GET",
        f"{P}/participations/123",
        {},
        None,
        answer={"attended": 0, "registered": 1, "cancelled": 0, "noShows": 0},
    ),
    "26 breakdown ext": Case(
        lambda c: c.get_participation_breakdown(
            **EXT,
            contact_identifier="156792341",
            state=ParticipationState.NO_SHOW,
            limit=100,
            after="x",
        ),
        "GET",
        f"{P}/participations/acct/evt/breakdown",
        {"contactIdentifier": "156792341", "state": "NO_SHOW", "limit": "100", "after": "x"},
        None,
        answer=BREAKDOWN,
        check=lambda v: (
            v.results[0].properties.attendance_state == "REGISTERED"
            and v.results[0].associations.contact.contact_id == "156792341"
        ),
    ),
    "27 breakdown id": Case(
        lambda c: c.get_participation_breakdown_by_object_id(
            123, state=ParticipationState.ATTENDED
        ),
        "GET",
        f"{P}/participations/123/breakdown",
        {"state": "ATTENDED"},
        None,
        answer={
            **BREAKDOWN,
            "results": [
                {
                    **BREAKDOWN["results"][0],
                    "properties": {
                        "attendanceState": "ATTENDED",
                        "occurredAt": "2024-05-21T18:35:04.838Z",
                    },
                }
            ],
        },
        check=lambda v: isinstance(v.results[0].properties.occurred_at, datetime),
    ),
    "28 breakdown contact": Case(
        lambda c: c.get_contact_participations("156792341", limit=5),
        "GET",
        f"{P}/participations/contacts/156792341/breakdown",
        {"limit": "5"},
        None,
        answer=BREAKDOWN,
    ),
    "29 lists id": Case(
        lambda c: c.get_associated_lists("9"),
        "GET",
        f"{P}/associations/9/lists",
        {},
        None,
        answer=LISTS,
        check=lambda v: v.results[0].list_id == "42",
    ),
    "30 link id": Case(
        lambda c: c.associate_list("9", "42"),
        "PUT",
        f"{P}/associations/9/lists/42",
        {},
        None,
        status=204,
    ),
    "31 unlink id": Case(
        lambda c: c.disassociate_list("9", "42"),
        "DELETE",
        f"{P}/associations/9/lists/42",
        {},
        None,
        status=204,
    ),
    "32 lists ext": Case(
        lambda c: c.get_associated_lists_by_external_id(**EXT),
        "GET",
        f"{P}/associations/acct/evt/lists",
        {},
        None,
        answer=LISTS,
    ),
    "33 link ext": Case(
        lambda c: c.associate_list_by_external_id("42", **EXT),
        "PUT",
        f"{P}/associations/acct/evt/lists/42",
        {},
        None,
        status=204,
    ),
    "34 unlink ext": Case(
        lambda c: c.disassociate_list_by_external_id("42", **EXT),
        "DELETE",
        f"{P}/associations/acct/evt/lists/42",
        {},
        None,
        status=204,
    ),
    "35 settings get": Case(
        lambda c: c.get_app_settings(1001),
        "GET",
        f"{P}/1001/settings",
        {},
        None,
        answer={"appId": 1001, "eventDetailsUrl": "https://my.event.app/events/%s"},
        check=lambda v: v.app_id == 1001,
    ),
    "36 settings set": Case(
        lambda c: c.update_app_settings(1001, "https://my.event.app/events/%s"),
        "POST",
        f"{P}/1001/settings",
        {},
        {"eventDetailsUrl": "https://my.event.app/events/%s"},
        answer={"appId": 1001, "eventDetailsUrl": "https://my.event.app/events/%s"},
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_operation_request_and_response(name: str) -> None:
    case = CASES[name]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        if case.answer is None:
            return httpx.Response(case.status)
        return httpx.Response(case.status, json=case.answer)

    client = HubSpotClient("pat-na1-test-token-0000000000", transport=httpx.MockTransport(handler))
    response = case.call(client)
    assert len(seen) == 1
    request = seen[0]
    assert request.method == case.method
    assert request.url.path == case.path
    assert dict(request.url.params) == case.query
    if case.body is None:
        assert request.content == b""
    else:
        assert request.headers["Content-Type"] == "application/json"
        assert json.loads(request.content) == case.body
    assert response.status == case.status
    assert case.check(response.value)


def test_route_table_fully_covered() -> None:
    numbers = {int(name.split()[0]) for name in CASES}
    assert numbers == set(range(1, 37))


def test_settings_url_validated_client_side() -> None:
    client = HubSpotClient(
        "pat-na1-test-token-0000000000",
        transport=httpx.MockTransport(lambda r: httpx.Response(500)),
    )
    with pytest.raises(ValueError):
        client.update_app_settings(1, "http://insecure.example/%s")
    with pytest.raises(ValueError):
        client.update_app_settings(1, "https://no-placeholder.example/")
