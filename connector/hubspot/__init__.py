"""The HubSpot Marketing Events client: httpx, typed models, errors, rate limits, signatures.

Knows nothing about Kafka. Start from :class:`HubSpotClient`; every call returns a
:class:`Response` (``value``, ``status``, ``rate_limit``, ``correlation_id``), raises a
:class:`HubSpotError` subclass for failures, and returns partial batch failures as values in
:class:`BatchResult`.
"""

from connector.hubspot.attendance import (
    AttendanceCounters,
    AttendanceProperties,
    MarketingEventEmailSubscriber,
    MarketingEventSubscriber,
    ParticipationBreakdown,
    SubscriberEmailResponse,
    SubscriberVidResponse,
    WireInputs,
)
from connector.hubspot.client import DEFAULT_LIMITS, DEFAULT_TIMEOUT, HubSpotClient
from connector.hubspot.errors import (
    AuthenticationError,
    ConflictError,
    HubSpotConnectionError,
    HubSpotError,
    HubSpotHTTPError,
    HubSpotTimeoutError,
    HubSpotTransportError,
    LockedError,
    MigrationInProgressError,
    MissingScopesError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    SignatureError,
    UnexpectedResponseError,
    ValidationError,
    is_retriable,
)
from connector.hubspot.events import (
    CustomProperty,
    MarketingEventCreateRequestParams,
    MarketingEventDefaultResponse,
    MarketingEventExternalUniqueIdentifier,
    MarketingEventPublicDefaultResponse,
    MarketingEventPublicDefaultResponseV2,
    MarketingEventPublicReadResponse,
    MarketingEventPublicReadResponseV2,
    MarketingEventPublicUpdateRequestFullV2,
    MarketingEventPublicUpdateRequestV2,
    MarketingEventUpdateRequestParams,
)
from connector.hubspot.models import (
    BatchResult,
    BatchStatus,
    EventDetailSettings,
    Page,
    ParticipationState,
    StandardError,
    SubscriberState,
)
from connector.hubspot.ratelimit import RateLimitStatus, parse_retry_after
from connector.hubspot.wire import Response

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "AttendanceCounters",
    "AttendanceProperties",
    "AuthenticationError",
    "BatchResult",
    "BatchStatus",
    "ConflictError",
    "CustomProperty",
    "EventDetailSettings",
    "HubSpotClient",
    "HubSpotConnectionError",
    "HubSpotError",
    "HubSpotHTTPError",
    "HubSpotTimeoutError",
    "HubSpotTransportError",
    "LockedError",
    "MarketingEventCreateRequestParams",
    "MarketingEventDefaultResponse",
    "MarketingEventEmailSubscriber",
    "MarketingEventExternalUniqueIdentifier",
    "MarketingEventPublicDefaultResponse",
    "MarketingEventPublicDefaultResponseV2",
    "MarketingEventPublicReadResponse",
    "MarketingEventPublicReadResponseV2",
    "MarketingEventPublicUpdateRequestFullV2",
    "MarketingEventPublicUpdateRequestV2",
    "MarketingEventSubscriber",
    "MarketingEventUpdateRequestParams",
    "MigrationInProgressError",
    "MissingScopesError",
    "NotFoundError",
    "Page",
    "ParticipationBreakdown",
    "ParticipationState",
    "RateLimitStatus",
    "RateLimitedError",
    "Response",
    "ServerError",
    "SignatureError",
    "StandardError",
    "SubscriberEmailResponse",
    "SubscriberState",
    "SubscriberVidResponse",
    "UnexpectedResponseError",
    "ValidationError",
    "WireInputs",
    "is_retriable",
    "parse_retry_after",
]
