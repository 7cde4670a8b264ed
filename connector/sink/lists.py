"""List associations (``hubspot.list_associations``): an upserted event joins its lists.

After an EventUpsert succeeded, the lists configured for its event are linked with
``PUT /associations/{objectId}/lists/{listId}`` (#30), each (objectId, list) once per process
(successes are cached; a restart re-sends them, which is idempotent). They go through the same
rate budget and retry policy as every request: 429/5xx and network failures are retried within
the budget, 401/403 stop the worker (the upsert is then not committed and is replayed). A list
that fails for good (404 unknown list, 400, retries exhausted) dead-letters the *upsert command*
with reason ``list-association-failed`` and the failed list ids — the event itself is upserted,
its objectId cached and parked attendance released, and the other lists are still linked.
Re-driving that dead letter re-sends the (idempotent) upsert and retries the association, which
is what an operator wants once the list exists or the mapping is fixed; logging and moving on
would hide a mapping error for good.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import replace

from connector.hubspot import HubSpotClient, HubSpotError
from connector.sink.outcome import CommandFailure, Reason
from connector.sink.request import ListTargets
from connector.sink.send import RequestSender
from connector.sink.work import PendingCommand

log = logging.getLogger("connector.sink")


class ListAssociator:
    """Links upserted events to their configured HubSpot lists, each pair once."""

    def __init__(self, client: HubSpotClient, sender: RequestSender,
                 lists: ListTargets) -> None:
        self._client = client
        self._sender = sender
        self._lists = lists
        self._associated: set[tuple[str, str]] = set()

    def is_associated(self, object_id: str, list_id: str) -> bool:
        """This process linked the event to the list already."""
        return (object_id, list_id) in self._associated

    def associate(self, pending: PendingCommand, object_id: str) -> CommandFailure | None:
        """Link the event to its configured lists; a failure naming the lists that failed."""
        failed: list[tuple[str, HubSpotError]] = []
        for list_id in self._lists.lists_for(pending.event):
            if (object_id, list_id) in self._associated:
                continue
            error = self._link(pending, object_id, list_id)
            if error is not None:
                failed.append((list_id, error))
        if not failed:
            return None
        list_ids = ", ".join(list_id for list_id, _ in failed)
        upserted = CommandFailure.from_error(pending, Reason.LIST_ASSOCIATION_FAILED, failed[0][1])
        message = (f"event upserted (objectId={object_id}) but not associated with HubSpot "
                   f"list(s) {list_ids}: {upserted.message}")
        return replace(upserted, message=message)

    def _link(self, pending: PendingCommand, object_id: str, list_id: str) -> HubSpotError | None:
        """One association (with retries); the error when it failed for good."""
        try:
            self._sender.call(functools.partial(self._client.associate_list, object_id, list_id),
                              [pending])
        except HubSpotError as exc:
            log.warning("sink.list_association_failed event=%s object_id=%s list_id=%s "
                        "status=%s category=%s", pending.event.event, object_id, list_id,
                        getattr(exc, "status", None), getattr(exc, "category", None))
            return exc
        self._associated.add((object_id, list_id))
        log.info("sink.list_associated event=%s object_id=%s list_id=%s",
                 pending.event.event, object_id, list_id)
        return None
