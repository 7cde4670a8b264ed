"""``HubSpotClient``: one method per operation of the Marketing Events API (reference §0).

Every method returns :class:`~connector.hubspot.wire.Response` — the typed ``value`` plus the
``status``, the parsed :class:`RateLimitStatus` and the correlation id. The most recent rate-limit
status seen (success *or* error) is also kept in :attr:`HubSpotClient.last_rate_limit`, so a rate
budget can read it without threading responses through. Non-2xx answers raise the
:mod:`connector.hubspot.errors` class for their status; batch partial failures (207, or ``errors``
in a 200) are returned as values in :class:`BatchResult`.

External IDs are keyword-only wherever both appear, because the two strings are easy to swap.
The client knows nothing about Kafka; it is synchronous because the sink is a single-threaded loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import httpx

from connector import __version__
from connector.hubspot.events import (
    MarketingEventCompleteRequestParams,
    MarketingEventCreateRequestParams,
    MarketingEventDefaultResponse,
    MarketingEventExternalUniqueIdentifier,
    MarketingEventIdentifiersResponse,
    MarketingEventPublicDefaultResponse,
    MarketingEventPublicDefaultResponseV2,
    MarketingEventPublicReadResponse,
    MarketingEventPublicReadResponseV2,
    MarketingEventPublicUpdateRequestFullV2,
    MarketingEventPublicUpdateRequestV2,
    MarketingEventUpdateRequestParams,
    SearchPublicResponseWrapper,
)
from connector.hubspot.lists import ListOperations
from connector.hubspot.models import (
    BatchResult,
    EventDetailSettings,
    EventDetailSettingsUrl,
    Page,
    to_wire,
)
from connector.hubspot.participation import ParticipationOperations, optional_batch
from connector.hubspot.ratelimit import RateLimitStatus
from connector.hubspot.wire import BearerAuth, Params, Response, Wire, no_body
from connector.hubspot.wire import quote_segment as _seg

PREFIX = "/marketing/v3/marketing-events"

# Timeouts, chosen for a single-threaded Kafka loop: every second blocked here is a second the
# consumer does not poll (max.poll.interval.ms defaults to 300 s and retries multiply the wait).
# connect 5 s: api.hubapi.com answers fast; a slow connect means trouble, fail and retry.
# read 30 s: batch upserts/attendance can take several seconds server-side; 30 s is generous
#   while still leaving room for a few retries inside the poll interval.
# write 10 s: request bodies are small JSON batches.
# pool 5 s: only one request is ever in flight, so waiting for a pooled connection means a bug.
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)
# Pool: one caller, so few connections; keep-alive matters more (it saves a TLS handshake on every
# one of up to ~100-190 calls per 10 s). Idle connections are dropped after 30 s.
DEFAULT_LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=2, keepalive_expiry=30.0)


class HubSpotClient(ParticipationOperations, ListOperations):
    """A synchronous client for HubSpot's Marketing Events API v3."""

    def __init__(
        self,
        token: str | BearerAuth,
        *,
        base_url: str = "https://api.hubapi.com",
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
    ) -> None:
        # A token, or how to get one for each request (RefreshingBearerAuth: OAuth).
        self._auth = token if isinstance(token, BearerAuth) else BearerAuth(token)
        self._base_url = base_url
        self._http = httpx.Client(
            base_url=base_url,
            auth=self._auth,
            transport=transport,
            timeout=timeout,
            limits=limits,
            follow_redirects=False,
            headers={
                "Accept": "application/json",
                "User-Agent": f"webinar-hubspot-connector/{__version__}",
            },
        )
        self._wire = Wire(self._http, self._auth)

    def __repr__(self) -> str:
        return f"HubSpotClient(base_url={self._base_url!r}, token={self._auth.fingerprint!r})"

    def __enter__(self) -> HubSpotClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()

    @property
    def last_rate_limit(self) -> RateLimitStatus | None:
        """Rate-limit headers of the most recent response, success or error (None if absent)."""
        return self._wire.last_rate_limit

    def _call(
        self,
        method: str,
        path: str,
        parse: Any,
        *,
        params: Params | None = None,
        json_body: Any = None,
        body_optional: bool = False,
    ) -> Response[Any]:
        return self._wire.call(
            method,
            PREFIX + path,
            parse,
            params=params,
            json_body=json_body,
            body_optional=body_optional,
        )

    # ----------------------------------------------------------------- events by external IDs

    def create_event(
        self, event: MarketingEventCreateRequestParams
    ) -> Response[MarketingEventDefaultResponse]:
        """#1 ``POST /events``."""
        return self._call(
            "POST",
            "/events",
            MarketingEventDefaultResponse.model_validate,
            json_body=to_wire(event),
        )

    def upsert_event(
        self, event: MarketingEventCreateRequestParams
    ) -> Response[MarketingEventPublicDefaultResponse]:
        """#2 ``PUT /events/{externalEventId}`` — create or update one event."""
        return self._call(
            "PUT",
            f"/events/{_seg(event.external_event_id)}",
            MarketingEventPublicDefaultResponse.model_validate,
            json_body=to_wire(event),
        )

    def get_event(
        self, *, external_account_id: str, external_event_id: str
    ) -> Response[MarketingEventPublicReadResponse]:
        """#3 ``GET /events/{externalEventId}?externalAccountId=``."""
        return self._call(
            "GET",
            f"/events/{_seg(external_event_id)}",
            MarketingEventPublicReadResponse.model_validate,
            params={"externalAccountId": external_account_id},
        )

    def update_event(
        self,
        changes: MarketingEventUpdateRequestParams,
        *,
        external_account_id: str,
        external_event_id: str,
    ) -> Response[MarketingEventPublicDefaultResponse]:
        """#4 ``PATCH /events/{externalEventId}?externalAccountId=``."""
        return self._call(
            "PATCH",
            f"/events/{_seg(external_event_id)}",
            MarketingEventPublicDefaultResponse.model_validate,
            params={"externalAccountId": external_account_id},
            json_body=to_wire(changes),
        )

    def delete_event(self, *, external_account_id: str, external_event_id: str) -> Response[None]:
        """#5 ``DELETE /events/{externalEventId}?externalAccountId=`` (204)."""
        return self._call(
            "DELETE",
            f"/events/{_seg(external_event_id)}",
            no_body,
            params={"externalAccountId": external_account_id},
            body_optional=True,
        )

    def complete_event(
        self,
        *,
        external_account_id: str,
        external_event_id: str,
        start_date_time: datetime,
        end_date_time: datetime,
    ) -> Response[MarketingEventDefaultResponse]:
        """#6 ``POST /events/{externalEventId}/complete?externalAccountId=``."""
        body = MarketingEventCompleteRequestParams(
            start_date_time=start_date_time, end_date_time=end_date_time
        )
        return self._call(
            "POST",
            f"/events/{_seg(external_event_id)}/complete",
            MarketingEventDefaultResponse.model_validate,
            params={"externalAccountId": external_account_id},
            json_body=to_wire(body),
        )

    def cancel_event(
        self, *, external_account_id: str, external_event_id: str
    ) -> Response[MarketingEventDefaultResponse]:
        """#7 ``POST /events/{externalEventId}/cancel?externalAccountId=`` (no body)."""
        return self._call(
            "POST",
            f"/events/{_seg(external_event_id)}/cancel",
            MarketingEventDefaultResponse.model_validate,
            params={"externalAccountId": external_account_id},
        )

    # ----------------------------------------------------------------- list, objectId CRUD

    def list_events(
        self, *, after: str | None = None, limit: int | None = None
    ) -> Response[Page[MarketingEventPublicReadResponseV2]]:
        """#8 ``GET /?after=&limit=`` — one page of all apps' events."""
        return self._call(
            "GET",
            "/",
            Page[MarketingEventPublicReadResponseV2].model_validate,
            params={"after": after, "limit": limit},
        )

    def iter_events(self, *, page_size: int = 100) -> Iterator[MarketingEventPublicReadResponseV2]:
        """Every event, following ``paging.next.after`` (one request per page)."""
        after: str | None = None
        while True:
            page = self.list_events(after=after, limit=page_size).value
            yield from page.results
            after = page.next_after
            if after is None:
                return

    def get_event_by_object_id(
        self, object_id: str
    ) -> Response[MarketingEventPublicReadResponseV2]:
        """#9 ``GET /{objectId}``."""
        return self._call(
            "GET", f"/{_seg(object_id)}", MarketingEventPublicReadResponseV2.model_validate
        )

    def update_event_by_object_id(
        self, object_id: str, changes: MarketingEventPublicUpdateRequestV2
    ) -> Response[MarketingEventPublicDefaultResponseV2]:
        """#10 ``PATCH /{objectId}``."""
        return self._call(
            "PATCH",
            f"/{_seg(object_id)}",
            MarketingEventPublicDefaultResponseV2.model_validate,
            json_body=to_wire(changes),
        )

    def delete_event_by_object_id(self, object_id: str) -> Response[None]:
        """#11 ``DELETE /{objectId}`` (204)."""
        return self._call("DELETE", f"/{_seg(object_id)}", no_body, body_optional=True)

    # ----------------------------------------------------------------- batches

    def batch_upsert_events(
        self, events: Sequence[MarketingEventCreateRequestParams]
    ) -> Response[BatchResult[MarketingEventPublicDefaultResponse]]:
        """#12 ``POST /events/upsert``; per-input failures come back in ``value.errors``."""
        return self._call(
            "POST",
            "/events/upsert",
            BatchResult[MarketingEventPublicDefaultResponse].model_validate,
            json_body={"inputs": [to_wire(e) for e in events]},
        )

    def batch_delete_events(
        self, events: Sequence[MarketingEventExternalUniqueIdentifier]
    ) -> Response[BatchResult[dict[str, Any]] | None]:
        """#13 ``POST /events/delete`` (202 observed; a batch body, if any, is returned)."""
        return self._call(
            "POST",
            "/events/delete",
            optional_batch,
            json_body={"inputs": [to_wire(e) for e in events]},
            body_optional=True,
        )

    def batch_update_events(
        self, updates: Sequence[MarketingEventPublicUpdateRequestFullV2]
    ) -> Response[BatchResult[MarketingEventPublicDefaultResponseV2]]:
        """#14 ``POST /batch/update`` (200, or 207 with ``errors``/``numErrors``)."""
        return self._call(
            "POST",
            "/batch/update",
            BatchResult[MarketingEventPublicDefaultResponseV2].model_validate,
            json_body={"inputs": [to_wire(u) for u in updates]},
        )

    def batch_archive_events(
        self, object_ids: Sequence[str]
    ) -> Response[BatchResult[dict[str, Any]] | None]:
        """#15 ``POST /batch/archive``: None on 204 (all deleted); the batch body on 207."""
        return self._call(
            "POST",
            "/batch/archive",
            optional_batch,
            json_body={"inputs": [{"objectId": str(i)} for i in object_ids]},
            body_optional=True,
        )

    # ----------------------------------------------------------------- identifiers

    def search_events(self, external_event_id: str) -> Response[Page[SearchPublicResponseWrapper]]:
        """#16 ``GET /events/search?q=`` — this app's events with that externalEventId."""
        return self._call(
            "GET",
            "/events/search",
            Page[SearchPublicResponseWrapper].model_validate,
            params={"q": external_event_id},
        )

    def find_event_identifiers(
        self, external_event_id: str
    ) -> Response[Page[MarketingEventIdentifiersResponse]]:
        """#17 ``GET /{externalEventId}/identifiers`` — portal-wide, eventually consistent."""
        return self._call(
            "GET",
            f"/{_seg(external_event_id)}/identifiers",
            Page[MarketingEventIdentifiersResponse].model_validate,
        )

    # ----------------------------------------------------------------- app settings

    def get_app_settings(self, app_id: int) -> Response[EventDetailSettings]:
        """#35 ``GET /{appId}/settings``."""
        return self._call("GET", f"/{_seg(app_id)}/settings", EventDetailSettings.model_validate)

    def update_app_settings(
        self, app_id: int, event_details_url: str
    ) -> Response[EventDetailSettings]:
        """#36 ``POST /{appId}/settings`` — ``event_details_url`` must be https and contain %s."""
        body = EventDetailSettingsUrl(event_details_url=event_details_url)
        return self._call(
            "POST",
            f"/{_seg(app_id)}/settings",
            EventDetailSettings.model_validate,
            json_body=to_wire(body),
        )
