"""The workers' own HTTP endpoint: `/metrics` for Prometheus and `/healthz` for orchestrators.

`connector run` serves it when `CONNECTOR_TELEMETRY__METRICS_PORT` is set, so lag, rate budget
and dead-letter counts of each worker process can be scraped where they are counted.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.serve.app import _Mounted
from connector.telemetry import Telemetry


def create_metrics_app(telemetry: Telemetry, alive: Callable[[], bool]) -> Starlette:
    """/healthz answers 200 while `alive()` (the workers run), else 503; /metrics when
    telemetry exports for Prometheus."""

    async def healthz(_request: Request) -> Response:
        ok = alive()
        return JSONResponse({"status": "ok" if ok else "stopping"}, status_code=200 if ok
                            else 503)

    routes = [Route("/healthz", healthz, methods=["GET"])]
    if telemetry.has_prometheus:
        routes.append(Route("/metrics", _Mounted(telemetry.prometheus_app()), methods=["GET"]))
    return Starlette(routes=routes)
