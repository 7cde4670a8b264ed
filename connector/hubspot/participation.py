"""Attendance writes (#18 to #23) and participation reads (#24 to #28) of ``HubSpotClient``.

A mixin, so the client stays one class while each file holds one concept; it relies only on the
client's ``_call`` (see :mod:`connector.hubspot.client`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connector.hubspot.attendance import (
    AttendanceCounters,
    MarketingEventEmailSubscriber,
    MarketingEventSubscriber,
    ParticipationBreakdown,
    Subscriber,
    SubscriberEmailResponse,
    SubscriberVidResponse,
    WireInputs,
    plain_subscriber_wire,
)
from connector.hubspot.models import (
    BatchResult,
    Page,
    ParticipationState,
    SubscriberState,
    to_wire,
)
from connector.hubspot.wire import FromJson, Operations, Params, Response, plain_json
from connector.hubspot.wire import quote_segment as _seg

#: The answers of the attendance writes, parametrised once: ``BatchResult[X]`` on every call
#: costs a cache lookup, and a new class whenever the cached one was garbage-collected.
_VID_BATCH = FromJson(BatchResult[SubscriberVidResponse])
_EMAIL_BATCH = FromJson(BatchResult[SubscriberEmailResponse])


def optional_batch(data: Any) -> BatchResult[dict[str, Any]] | None:
    """Parse an undocumented body: a batch envelope if it looks like one, else None."""
    if isinstance(data, dict) and ("results" in data or "errors" in data):
        return BatchResult[dict[str, Any]].model_validate(data)
    return None


def _limit(limit: int | None) -> int | None:
    if limit is not None and not 1 <= limit <= 100:
        raise ValueError("limit must be between 1 and 100")
    return limit


def _inputs(subscribers: Sequence[Subscriber] | WireInputs) -> Any:
    """The ``{"inputs": [...]}`` body: built by hand and encoded by orjson (the hot path of the
    sink: up to 100 inputs a request), or, if any input is not plain (see
    :func:`~connector.hubspot.attendance.plain_subscriber_wire`), by pydantic and httpx. Both
    give the same bytes."""
    if isinstance(subscribers, WireInputs):
        return plain_json({"inputs": subscribers})
    plain = [plain_subscriber_wire(s) for s in subscribers]
    if any(wire is None for wire in plain):
        return {"inputs": [to_wire(s) for s in subscribers]}
    return plain_json({"inputs": plain})


class ParticipationOperations(Operations):
    """Attendance and participation endpoints; mixed into ``HubSpotClient``."""

    # ----------------------------------------------------------------- attendance

    def record_attendance(
        self,
        object_id: str,
        state: SubscriberState,
        subscribers: Sequence[MarketingEventSubscriber] | WireInputs,
    ) -> Response[BatchResult[SubscriberVidResponse]]:
        """#18 ``POST /{objectId}/attendance/{state}/create`` by contact id."""
        return self._call(
            "POST",
            f"/{_seg(object_id)}/attendance/{_seg(state.value)}/create",
            _VID_BATCH,
            json_body=_inputs(subscribers),
        )

    def record_attendance_by_email(
        self,
        object_id: str,
        state: SubscriberState,
        subscribers: Sequence[MarketingEventEmailSubscriber] | WireInputs,
    ) -> Response[BatchResult[SubscriberEmailResponse]]:
        """#19 ``POST /{objectId}/attendance/{state}/email-create`` (creates unknown contacts)."""
        return self._call(
            "POST",
            f"/{_seg(object_id)}/attendance/{_seg(state.value)}/email-create",
            _EMAIL_BATCH,
            json_body=_inputs(subscribers),
        )

    def record_external_attendance(
        self,
        state: SubscriberState,
        subscribers: Sequence[MarketingEventSubscriber] | WireInputs,
        *,
        external_event_id: str,
        external_account_id: str | None = None,
    ) -> Response[BatchResult[SubscriberVidResponse]]:
        """#20 ``POST /attendance/{externalEventId}/{state}/create[?externalAccountId=]``."""
        return self._call(
            "POST",
            f"/attendance/{_seg(external_event_id)}/{_seg(state.value)}/create",
            _VID_BATCH,
            params={"externalAccountId": external_account_id},
            json_body=_inputs(subscribers),
        )

    def record_external_attendance_by_email(
        self,
        state: SubscriberState,
        subscribers: Sequence[MarketingEventEmailSubscriber] | WireInputs,
        *,
        external_event_id: str,
        external_account_id: str | None = None,
    ) -> Response[BatchResult[SubscriberEmailResponse]]:
        """#21 ``POST /attendance/{externalEventId}/{state}/email-create[?externalAccountId=]``."""
        return self._call(
            "POST",
            f"/attendance/{_seg(external_event_id)}/{_seg(state.value)}/email-create",
            _EMAIL_BATCH,
            params={"externalAccountId": external_account_id},
            json_body=_inputs(subscribers),
        )

    def upsert_subscriber_state(
        self,
        state: SubscriberState,
        subscribers: Sequence[MarketingEventSubscriber] | WireInputs,
        *,
        external_account_id: str,
        external_event_id: str,
    ) -> Response[BatchResult[dict[str, Any]] | None]:
        """#22 legacy ``POST /events/{externalEventId}/{state}/upsert?externalAccountId=``."""
        return self._call(
            "POST",
            f"/events/{_seg(external_event_id)}/{_seg(state.value)}/upsert",
            optional_batch,
            params={"externalAccountId": external_account_id},
            json_body=_inputs(subscribers),
            body_optional=True,
        )

    def upsert_subscriber_state_by_email(
        self,
        state: SubscriberState,
        subscribers: Sequence[MarketingEventEmailSubscriber] | WireInputs,
        *,
        external_account_id: str,
        external_event_id: str,
    ) -> Response[BatchResult[dict[str, Any]] | None]:
        """#23 legacy ``POST /events/{externalEventId}/{state}/email-upsert?externalAccountId=``."""
        return self._call(
            "POST",
            f"/events/{_seg(external_event_id)}/{_seg(state.value)}/email-upsert",
            optional_batch,
            params={"externalAccountId": external_account_id},
            json_body=_inputs(subscribers),
            body_optional=True,
        )

    # ----------------------------------------------------------------- participations

    def get_participation_counters(
        self, *, external_account_id: str, external_event_id: str
    ) -> Response[AttendanceCounters]:
        """#24 ``GET /participations/{externalAccountId}/{externalEventId}``."""
        return self._call(
            "GET",
            f"/participations/{_seg(external_account_id)}/{_seg(external_event_id)}",
            AttendanceCounters.model_validate,
        )

    def get_participation_counters_by_object_id(
        self, marketing_event_id: int | str
    ) -> Response[AttendanceCounters]:
        """#25 ``GET /participations/{marketingEventId}``."""
        return self._call(
            "GET", f"/participations/{_seg(marketing_event_id)}", AttendanceCounters.model_validate
        )

    @staticmethod
    def _breakdown_params(
        contact_identifier: str | None,
        state: ParticipationState | None,
        limit: int | None,
        after: str | None,
    ) -> Params:
        return {
            "contactIdentifier": contact_identifier,
            "state": state.value if state else None,
            "limit": _limit(limit),
            "after": after,
        }

    def get_participation_breakdown(
        self,
        *,
        external_account_id: str,
        external_event_id: str,
        contact_identifier: str | None = None,
        state: ParticipationState | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> Response[Page[ParticipationBreakdown]]:
        """#26 ``GET /participations/{externalAccountId}/{externalEventId}/breakdown``."""
        return self._call(
            "GET",
            f"/participations/{_seg(external_account_id)}/{_seg(external_event_id)}/breakdown",
            Page[ParticipationBreakdown].model_validate,
            params=self._breakdown_params(contact_identifier, state, limit, after),
        )

    def get_participation_breakdown_by_object_id(
        self,
        marketing_event_id: int | str,
        *,
        contact_identifier: str | None = None,
        state: ParticipationState | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> Response[Page[ParticipationBreakdown]]:
        """#27 ``GET /participations/{marketingEventId}/breakdown``."""
        return self._call(
            "GET",
            f"/participations/{_seg(marketing_event_id)}/breakdown",
            Page[ParticipationBreakdown].model_validate,
            params=self._breakdown_params(contact_identifier, state, limit, after),
        )

    def get_contact_participations(
        self,
        contact_identifier: str | int,
        *,
        state: ParticipationState | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> Response[Page[ParticipationBreakdown]]:
        """#28 ``GET /participations/contacts/{contactIdentifier}/breakdown`` (email or id)."""
        return self._call(
            "GET",
            f"/participations/contacts/{_seg(contact_identifier)}/breakdown",
            Page[ParticipationBreakdown].model_validate,
            params=self._breakdown_params(None, state, limit, after),
        )
