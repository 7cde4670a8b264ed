"""Schemathesis runs HubSpot's official OpenAPI spec (marketing-events-v3.json) against the
in-process sandbox: no 5xx, and every answer conforms to the spec.

The only edit to the published spec: its list operation is keyed `/marketing/marketing-events/v3`
(a publishing bug, reference §10.3); we re-key it to the real `/marketing/v3/marketing-events/`.
Checks relaxed per operation are listed in connector/sandbox/README.md ("Deviations").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
)
from starlette.testclient import TestClient

from connector.sandbox import SandboxConfig, create_app

SPEC = (
    Path(__file__).resolve().parents[2].parent / "shared/reference/openapi/marketing-events-v3.json"
)
if not SPEC.exists():  # pragma: no cover - the shared reference lives beside the repo
    pytest.skip(f"HubSpot spec not found at {SPEC}", allow_module_level=True)

CONFIG = SandboxConfig.default(window_limit=None, daily_limit=None)
APP = create_app(CONFIG)
NO_DOCUMENTED_SUCCESS = tuple(
    f"/marketing/v3/marketing-events{p}"
    for p in (
        "/batch/archive",
        "/events/delete",
        "/events/{externalEventId}/{subscriberState}/upsert",
        "/events/{externalEventId}/{subscriberState}/email-upsert",
    )
)
AUTH = {"Authorization": f"Bearer {CONFIG.apps[0].token}"}


def _load_spec() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(SPEC.read_text())
    paths = raw["paths"]
    paths["/marketing/v3/marketing-events/"] = paths.pop("/marketing/marketing-events/v3")
    return raw


schema = schemathesis.openapi.from_dict(_load_spec())
schema.app = APP


@pytest.fixture(autouse=True)
def _seed_event() -> None:
    """Hypothesis starts from small values ("0"); an event (account "0", id "0") and a contact
    make many generated requests reach the success paths, not just 404s."""
    with TestClient(APP) as client:
        client.put(
            "/marketing/v3/marketing-events/events/0",
            json={
                "externalAccountId": "0",
                "externalEventId": "0",
                "eventName": "Seed",
                "eventOrganizer": "Org",
                "customProperties": [],
            },
            headers=AUTH,
        ).raise_for_status()


@schema.parametrize()
@settings(
    max_examples=8,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_sandbox_conforms_to_hubspot_openapi(case: schemathesis.Case) -> None:
    # positive_data_acceptance: the spec is looser than HubSpot (no enum for subscriberState,
    # empty ids allowed); the sandbox answers 400 like HubSpot's validation does.
    # negative_data_rejection: like HubSpot's deserializer, the sandbox accepts null for absent
    # fields and ignores PropertyValue metadata it does not use (README "Deviations").
    excluded = [positive_data_acceptance, negative_data_rejection]
    if case.operation.path in NO_DOCUMENTED_SUCCESS:
        # the spec declares only `default` (Error) for these; HubSpot answers an empty
        # 202/204 (and batch/archive a schemaless 207), as the sandbox does
        excluded += [content_type_conformance, response_schema_conformance]
    case.call_and_validate(headers=AUTH, excluded_checks=excluded)
