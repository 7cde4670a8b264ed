"""The workers' own HTTP endpoint: `/metrics` for Prometheus and `/healthz` for orchestrators.

`connector run` serves it when `CONNECTOR_TELEMETRY__METRICS_PORT` is set, so lag, rate budget
and dead-letter counts of each worker process can be scraped where they are counted.

`/healthz` answers 503 while the process stops, or while a worker is stalled (the rule:
``connector.telemetry.progress``), so that a supervisor restarts it::

    200 {"status": "ok", "workers": {"sink": {"status": "busy", "waiting_on": "hubspot", ...}}}
    503 {"status": "stalled", "stalled": [{"worker": "sink", "waiting_on": "kafka-commit",
         "seconds_without_progress": 131.0}], "workers": {...}}
    503 {"status": "stopping", "workers": {...}}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from connector.telemetry import Telemetry
from connector.telemetry.progress import ProgressBoard


class Mounted:
    """An ASGI app as a Route endpoint: served at its exact path (no redirect to path/)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def prometheus_route(telemetry: Telemetry) -> Route:
    """``GET /metrics``: the Prometheus exposition (telemetry must export for Prometheus)."""
    return Route("/metrics", Mounted(telemetry.prometheus_app()), methods=["GET"])


def create_metrics_app(telemetry: Telemetry, alive: Callable[[], bool],
                       progress: ProgressBoard | None = None) -> Starlette:
    """/healthz answers 200 while `alive()` (the workers run) and no worker of `progress` is
    stalled, else 503 naming the stalled workers; /metrics when telemetry exports for
    Prometheus."""

    def healthz(_request: Request) -> Response:  # sync: starlette runs it in a thread
        statuses = progress.check() if progress is not None else []
        body: dict[str, Any] = {"status": "ok"}
        stalled = [s for s in statuses if s.stalled]
        if not alive():
            body["status"] = "stopping"
        elif stalled:
            body["status"] = "stalled"
            body["stalled"] = [{"worker": s.worker, "waiting_on": s.waiting_on,
                                "seconds_without_progress": round(s.seconds_without_progress, 1),
                                "lag": s.lag, "in_hand": s.in_hand} for s in stalled]
        if progress is not None:
            body["workers"] = {s.worker: s.to_json() for s in statuses}
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    routes = [Route("/healthz", healthz, methods=["GET"])]
    if telemetry.has_prometheus:
        routes.append(prometheus_route(telemetry))
    return Starlette(routes=routes)
