"""Typed request and response bodies of the Marketing Events API (reference §2, §3, §5).

Names follow the OpenAPI schema names so they can be looked up in the reference. Python fields are
snake_case; the wire uses camelCase aliases. Requests are strict (``extra="forbid"``) and are
serialised with :func:`to_wire` (aliases, ``None`` omitted, datetimes as ``...T12:00:00.000Z``);
responses accept unknown fields, because HubSpot adds fields without notice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)
from pydantic.alias_generators import to_camel

T = TypeVar("T")


def _iso_ms(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


HubSpotDateTime = Annotated[AwareDatetime, PlainSerializer(_iso_ms, return_type=str)]
"""A timezone-aware instant, sent the way HubSpot writes them: UTC, milliseconds, ``Z``."""


def epoch_ms(value: datetime) -> int:
    """An aware datetime as epoch milliseconds (the unit of ``interactionDateTime``)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: give a timezone-aware instant")
    return int(value.timestamp() * 1000)


class RequestModel(BaseModel):
    """Base of request bodies: strict, camelCase on the wire, frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="forbid",
        frozen=True,
    )


class ResponseModel(BaseModel):
    """Base of response bodies: tolerant of new fields, camelCase on the wire, frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="allow",
        frozen=True,
    )


def to_wire(model: BaseModel) -> dict[str, Any]:
    """The JSON body for a request model: camelCase keys, ``None`` fields left out."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


# --------------------------------------------------------------------------- vocabularies


class SubscriberState(StrEnum):
    """Path ``subscriberState`` of the attendance and legacy endpoints (spec verbs)."""

    REGISTER = "register"
    ATTEND = "attend"
    CANCEL = "cancel"


class ParticipationState(StrEnum):
    """The ``state`` filter of participation breakdowns."""

    REGISTERED = "REGISTERED"
    CANCELLED = "CANCELLED"
    ATTENDED = "ATTENDED"
    NO_SHOW = "NO_SHOW"


class BatchStatus(StrEnum):
    """``status`` of a batch response (note the single-L ``CANCELED``)."""

    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    CANCELED = "CANCELED"
    COMPLETE = "COMPLETE"


# --------------------------------------------------------------------------- errors (§5)


class ErrorDetail(ResponseModel):
    """One entry of ``errors[]`` in an Error / StandardError body."""

    message: str = ""
    code: str | None = None
    in_: str | None = Field(default=None, alias="in")
    sub_category: str | None = None
    context: dict[str, list[str]] | None = None


_SUBJECT_KEYS = (
    "id",
    "ids",
    "objectId",
    "objectIds",
    "externalEventId",
    "externalEventIds",
    "email",
    "emails",
    "vid",
    "vids",
)


class StandardError(ResponseModel):
    """One failed input of a batch (``errors[]`` of a 207/partial batch response)."""

    status: str | None = None
    category: str | None = None
    message: str = ""
    id: str | None = None
    sub_category: Any = None
    context: dict[str, list[str]] = Field(default_factory=dict)
    errors: list[ErrorDetail] = Field(default_factory=list)
    links: dict[str, str] = Field(default_factory=dict)

    def subject_ids(self) -> tuple[str, ...]:
        """Identifiers of the inputs this error is about (``id`` plus id-like ``context`` keys)."""
        found = [self.id] if self.id else []
        for key in _SUBJECT_KEYS:
            found.extend(self.context.get(key, ()))
        return tuple(dict.fromkeys(found))


class ErrorBody(ResponseModel):
    """The ``Error`` body of every non-2xx response (every field treated as optional)."""

    status: str | None = None
    message: str = ""
    correlation_id: str | None = None
    category: str | None = None
    sub_category: str | None = None
    context: dict[str, list[str]] = Field(default_factory=dict)
    links: dict[str, str] = Field(default_factory=dict)
    errors: list[ErrorDetail] = Field(default_factory=list)
    policy_name: str | None = None
    group_name: str | None = None
    request_id: str | None = None
    error_type: str | None = None


# --------------------------------------------------------------------------- paging (§2.3)


class NextPage(ResponseModel):
    """Cursor to the next page."""

    after: str
    link: str | None = None


class PreviousPage(ResponseModel):
    """Cursor to the previous page."""

    before: str
    link: str | None = None


class Paging(ResponseModel):
    """``paging``; absent on the last page."""

    next: NextPage | None = None
    prev: PreviousPage | None = None


class Page(ResponseModel, Generic[T]):
    """A collection response: ``results``, optional ``total`` and ``paging``."""

    results: list[T] = Field(default_factory=list)
    total: int | None = None
    paging: Paging | None = None

    @property
    def next_after(self) -> str | None:
        """The cursor for the next page, or None on the last page."""
        return self.paging.next.after if self.paging and self.paging.next else None


# --------------------------------------------------------------------------- batch envelope


class BatchResult(ResponseModel, Generic[T]):
    """A ``BatchResponse*`` body: successes in ``results``, per-input failures in ``errors``.

    A 207 (or a 200 carrying ``errors``) is a partial success, returned as a value — never raised —
    so the caller can dead-letter exactly the failed inputs.
    """

    status: BatchStatus | str = BatchStatus.COMPLETE
    results: list[T] = Field(default_factory=list)
    errors: list[StandardError] = Field(default_factory=list)
    num_errors: int | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    requested_at: datetime | None = None
    links: dict[str, str] = Field(default_factory=dict)

    @property
    def error_count(self) -> int:
        """``numErrors`` when sent, else the length of ``errors``."""
        return self.num_errors if self.num_errors is not None else len(self.errors)

    @property
    def is_partial(self) -> bool:
        """True when at least one input failed."""
        return self.error_count > 0


# --------------------------------------------------------------------------- events (§2.1, §2.2)


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


# --------------------------------------------------------------------------- lists, settings


class PublicList(ResponseModel):
    """A CRM list associated with an event (#29, #32)."""

    list_id: str
    name: str | None = None
    list_version: int | None = None
    object_type_id: str | None = None
    processing_status: str | None = None
    processing_type: str | None = None
    size: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class EventDetailSettings(ResponseModel):
    """An app's settings (#35, #36): where HubSpot fetches details of unknown events."""

    app_id: int
    event_details_url: str


class EventDetailSettingsUrl(RequestModel):
    """Body of the settings update (#36): a full ``https://`` URL containing ``%s``."""

    event_details_url: str

    @field_validator("event_details_url")
    @classmethod
    def _has_placeholder(cls, value: str) -> str:
        if not value.startswith("https://") or "%s" not in value:
            raise ValueError("eventDetailsUrl must start with https:// and contain %s")
        return value
