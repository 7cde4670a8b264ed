"""Shared test data for serde tests (unit and integration)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connector.serde.catalog import SchemaCatalog

DATA = Path(__file__).parent / "data"
EVOLVED_ACTIVITY = DATA / "webinar-activity-v1.1.avsc"


def activity(**overrides: Any) -> dict[str, Any]:
    """A valid WebinarActivity datum (action as a (record name, fields) tuple)."""
    base: dict[str, Any] = {
        "activityId": "act-1",
        "webinarId": "web-1",
        "accountId": "acct-1",
        "occurredAt": 1_767_261_600_000,
        "participant": {
            "participantId": "p-1", "email": "ada@example.com", "firstName": "Ada",
            "lastName": "Lovelace", "company": "Analytical", "hubspotContactId": None,
        },
        "action": ("webinar.platform.v1.Left", {"sessionId": "s-1", "reason": None}),
    }
    return {**base, **overrides}


def catalog_with_evolved() -> tuple[SchemaCatalog, Any]:
    """The project catalog plus the evolved activity schema registered as a writer version."""
    catalog = SchemaCatalog.from_directory()
    entry = catalog.add(json.loads(EVOLVED_ACTIVITY.read_text()), path=EVOLVED_ACTIVITY,
                        is_reader=False)
    return catalog, entry
