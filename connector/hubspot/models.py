"""Typed request and response bodies of the Marketing Events API (reference §2, §3, §5).

Names follow the OpenAPI schema names so they can be looked up in the reference. Python fields are
snake_case; the wire uses camelCase aliases. Requests are strict (``extra="forbid"``) and are
serialised with :func:`to_wire` (aliases, ``None`` omitted, datetimes as ``...T12:00:00.000Z``);
responses accept unknown fields, because HubSpot adds fields without notice.

Here: the base models, vocabularies, errors, paging, the batch envelope, lists and settings; the
marketing event bodies are in :mod:`connector.hubspot.events`.
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


def format_instant(value: datetime) -> str:
    """``value`` as HubSpot writes instants: UTC, milliseconds (truncated), ``Z``.

    Formatted from the fields: the same text as ``isoformat(timespec="milliseconds")`` with
    ``+00:00`` as ``Z``, at half the cost (two per attended input of every attendance batch).
    A datetime subclass, which may format itself differently, takes the ``isoformat`` path."""
    utc = value.astimezone(UTC)
    if type(utc) is not datetime:
        return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031 - f-strings are slower here
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond // 1000)


HubSpotDateTime = Annotated[AwareDatetime, PlainSerializer(format_instant, return_type=str)]
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
