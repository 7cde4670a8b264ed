"""List associations (#29 to #34) of ``HubSpotClient``: the CRM lists a marketing event joins.

A mixin like :mod:`connector.hubspot.participation`; it relies only on the client's ``_call``.
"""

from __future__ import annotations

from connector.hubspot.models import Page, PublicList
from connector.hubspot.wire import Operations, Response, no_body
from connector.hubspot.wire import quote_segment as _seg


class ListOperations(Operations):
    """List association endpoints, by objectId and by external IDs; mixed into
    ``HubSpotClient``."""

    def get_associated_lists(self, marketing_event_id: str) -> Response[Page[PublicList]]:
        """#29 ``GET /associations/{marketingEventId}/lists``."""
        return self._call(
            "GET",
            f"/associations/{_seg(marketing_event_id)}/lists",
            Page[PublicList].model_validate,
        )

    def associate_list(self, marketing_event_id: str, list_id: str) -> Response[None]:
        """#30 ``PUT /associations/{marketingEventId}/lists/{listId}`` (204)."""
        return self._call(
            "PUT",
            f"/associations/{_seg(marketing_event_id)}/lists/{_seg(list_id)}",
            no_body,
            body_optional=True,
        )

    def disassociate_list(self, marketing_event_id: str, list_id: str) -> Response[None]:
        """#31 ``DELETE /associations/{marketingEventId}/lists/{listId}`` (204)."""
        return self._call(
            "DELETE",
            f"/associations/{_seg(marketing_event_id)}/lists/{_seg(list_id)}",
            no_body,
            body_optional=True,
        )

    def _ext_lists(self, external_account_id: str, external_event_id: str) -> str:
        return f"/associations/{_seg(external_account_id)}/{_seg(external_event_id)}/lists"

    def get_associated_lists_by_external_id(
        self, *, external_account_id: str, external_event_id: str
    ) -> Response[Page[PublicList]]:
        """#32 ``GET /associations/{externalAccountId}/{externalEventId}/lists``."""
        return self._call(
            "GET",
            self._ext_lists(external_account_id, external_event_id),
            Page[PublicList].model_validate,
        )

    def associate_list_by_external_id(
        self, list_id: str, *, external_account_id: str, external_event_id: str
    ) -> Response[None]:
        """#33 ``PUT /associations/{externalAccountId}/{externalEventId}/lists/{listId}`` (204)."""
        path = f"{self._ext_lists(external_account_id, external_event_id)}/{_seg(list_id)}"
        return self._call("PUT", path, no_body, body_optional=True)

    def disassociate_list_by_external_id(
        self, list_id: str, *, external_account_id: str, external_event_id: str
    ) -> Response[None]:
        """#34 ``DELETE /associations/{externalAccountId}/{externalEventId}/lists/{listId}``."""
        path = f"{self._ext_lists(external_account_id, external_event_id)}/{_seg(list_id)}"
        return self._call("DELETE", path, no_body, body_optional=True)
