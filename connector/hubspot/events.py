"""Marketing event bodies (reference §2.1, §2.2): create, update, complete, read and search.

The base models, vocabularies, errors, paging and batch envelope they share are in
:mod:`connector.hubspot.models`, with the same conventions (OpenAPI names, camelCase on the wire).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from connector.hubspot.models import HubSpotDateTime, RequestModel, ResponseModel


class PropertyValue(ResponseModel):
    """``customProperties`` item of V1 responses (many more optional fields are kept as extras)."""

    name: str
    value: str | None = None
    timestamp: int | None = None
    source: str | None = None
    source_id: str | None = None


class CustomProperty(RequestModel):
    """``{name, value}`` — a custom property to write; unknown names are silently dropped."""

    name: str
    value: str


class CrmPropertyWrapper(ResponseModel):
    """``customProperties`` item of V2 responses."""

    name: str
    value: str | None = None


class AppInfo(ResponseModel):
    """The creating app."""

    id: str
    name: str | None = None


class _EventFields(RequestModel):
    event_name: str | None = None
    event_organizer: str | None = None
    event_type: str | None = None
    event_description: str | None = None
    event_url: str | None = None
    start_date_time: HubSpotDateTime | None = None
    end_date_time: HubSpotDateTime | None = None
    event_cancelled: bool | None = None
    custom_properties: list[CustomProperty] = Field(default_factory=list)


class MarketingEventCreateRequestParams(_EventFields):
    """Body of create (#1) and upsert (#2), and each input of batch upsert (#12)."""

    external_account_id: str
    external_event_id: str
    event_name: str
    event_organizer: str
    event_completed: bool | None = None


class MarketingEventUpdateRequestParams(_EventFields):
    """Body of PATCH by external IDs (#4)."""

    event_completed: bool | None = None


class MarketingEventPublicUpdateRequestV2(_EventFields):
    """Body of PATCH by objectId (#10)."""


class MarketingEventPublicUpdateRequestFullV2(_EventFields):
    """One input of batch update by objectId (#14)."""

    object_id: str


class MarketingEventCompleteRequestParams(RequestModel):
    """Body of complete (#6)."""

    start_date_time: HubSpotDateTime
    end_date_time: HubSpotDateTime


class MarketingEventExternalUniqueIdentifier(RequestModel):
    """One input of batch delete by external IDs (#13)."""

    app_id: int
    external_account_id: str
    external_event_id: str


class MarketingEventPublicObjectIdDeleteRequest(RequestModel):
    """One input of batch archive by objectId (#15)."""

    object_id: str


class _EventView(ResponseModel):
    event_name: str | None = None
    event_organizer: str | None = None
    event_type: str | None = None
    event_description: str | None = None
    event_url: str | None = None
    event_cancelled: bool | None = None
    event_completed: bool | None = None
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None
    object_id: str | None = None


class MarketingEventDefaultResponse(_EventView):
    """Response of create (#1), complete (#6), cancel (#7)."""

    custom_properties: list[PropertyValue] = Field(default_factory=list)


class MarketingEventPublicDefaultResponse(MarketingEventDefaultResponse):
    """Response of upsert (#2), PATCH (#4); items of batch upsert (#12)."""

    id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class _Counters(ResponseModel):
    registrants: int | None = None
    attendees: int | None = None
    cancellations: int | None = None
    no_shows: int | None = None


class MarketingEventPublicReadResponse(MarketingEventPublicDefaultResponse, _Counters):
    """Response of GET by external IDs (#3)."""

    external_event_id: str | None = None


class MarketingEventPublicDefaultResponseV2(_EventView):
    """Response of PATCH by objectId (#10); items of batch update (#14)."""

    app_info: AppInfo | None = None
    custom_properties: list[CrmPropertyWrapper] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class MarketingEventPublicReadResponseV2(MarketingEventPublicDefaultResponseV2, _Counters):
    """Response of GET by objectId (#9); items of the list (#8)."""

    external_event_id: str | None = None
    event_status: str | None = None
    event_status_v2: str | None = Field(default=None, alias="eventStatusV2")


class SearchPublicResponseWrapper(ResponseModel):
    """A hit of ``events/search`` (#16): the caller app's events only."""

    app_id: int | None = None
    external_account_id: str | None = None
    external_event_id: str
    object_id: str | None = None


class MarketingEventIdentifiersResponse(ResponseModel):
    """A hit of ``{externalEventId}/identifiers`` (#17): portal-wide."""

    external_event_id: str
    marketing_event_name: str | None = None
    object_id: str
    app_info: AppInfo | None = None
    external_account_id: str | None = None
