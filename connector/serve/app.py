"""The HTTP side of ``connector serve``: HubSpot's event-details callback, health and metrics.

* ``GET /events/{externalEventId}?appId=&externalAccountId=`` — 200 with the event details
  (see :mod:`.details`);
* ``GET /healthz`` — 200 while the process serves requests;
* ``GET /readyz`` — 200 when every readiness check passes (webinar table caught up, Kafka
  answers), else 503, with the checks by name;
* ``GET /metrics`` — Prometheus exposition (only when telemetry exports for Prometheus);
* ``GET /hubspot/install`` and the OAuth callback — the install flow of app mode
  (:mod:`.install`), passed in as ``extra_routes``.

The event-details route checks, in this order (the first failure answers):

1. ``X-HubSpot-Signature-v3`` over ``GET`` + the URL HubSpot called + body + timestamp, with the
   app's client secret (reference §7): a missing signature or timestamp, a timestamp more than
   five minutes away from the clock, or a wrong signature -> **401**. Older v1/v2 signatures
   (no timestamp, replayable) are not accepted on their own.
2. ``appId`` and ``externalAccountId`` query parameters present, ``appId`` an integer -> else
   **400**.
3. ``appId`` is this connector's app -> else **403** (another app's eventDetailsUrl points here).
4. The webinar is in the table and belongs to ``externalAccountId`` -> else **404**.

Errors answer JSON in HubSpot's Error style: ``{"status": "error", "category", "message"}``.

The URL that was signed is rebuilt from the raw request target (percent-escapes kept, as HubSpot
signs them) on ``public_url`` when a proxy in front changes scheme, host or path prefix, else on
the request's own scheme and ``Host`` header.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connector.hubspot.errors import SignatureError
from connector.hubspot.signature import SIGNATURE_V3_HEADER, TIMESTAMP_HEADER, verify_v3
from connector.normalize.normalizer import WebinarLookup
from connector.serve.details import event_details
from connector.serve.metrics import prometheus_route
from connector.telemetry import Telemetry

log = logging.getLogger("connector.serve")

#: Named readiness checks (all must be True), or one boolean.
Readiness = Callable[[], Mapping[str, bool] | bool]


def error(status: int, category: str, message: str, **headers: str) -> JSONResponse:
    """A JSON error answer in HubSpot's Error style."""
    return JSONResponse(
        {"status": "error", "category": category, "message": message},
        status_code=status,
        headers=headers or None,
    )


def signed_uri(request: Request, public_url: str | None = None) -> str:
    """The URL HubSpot called and signed: scheme://host[:port]/path?query, escapes as sent."""
    scope = request.scope
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope["path"]
    if public_url is not None:
        base = public_url.rstrip("/")
        root = scope.get("root_path", "")
        if root and path.startswith(root):  # the prefix is part of public_url
            path = path[len(root):]
    else:
        host = request.headers.get("host")
        if not host:
            server = scope.get("server") or ("localhost", None)
            host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
        base = f"{scope.get('scheme', 'http')}://{host}"
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{base}{path}?{query}" if query else f"{base}{path}"


def _checks(ready: Readiness) -> dict[str, bool]:
    result = ready()
    if isinstance(result, bool):
        return {"ready": result}
    return {name: bool(ok) for name, ok in result.items()}


class EventDetails:
    """``GET /events/{externalEventId}``: the checks of the module's docstring, in its order,
    then the event details. ``clock`` is epoch seconds (signature freshness)."""

    def __init__(self, table_lookup: WebinarLookup, *, client_secret: str, app_id: int,
                 clock: Callable[[], float], public_url: str | None) -> None:
        self._lookup = table_lookup
        self._secret = client_secret
        self._app_id = app_id
        self._clock = clock
        self._public_url = public_url

    async def respond(self, request: Request) -> Response:
        """The route's endpoint."""
        external_event_id = request.path_params["externalEventId"]
        body = await request.body()
        rejected = self._unsigned(request, body, external_event_id)
        if rejected is not None:
            return rejected
        params = request.query_params
        missing = [name for name in ("appId", "externalAccountId") if not params.get(name)]
        if missing:
            return error(400, "VALIDATION_ERROR",
                         f"query parameter(s) {', '.join(missing)} required")
        try:
            caller = int(params["appId"])
        except ValueError:
            return error(400, "VALIDATION_ERROR", "appId must be an integer")
        if caller != self._app_id:
            log.warning("serve.other_app app_id=%s event=%s", caller, external_event_id)
            return error(403, "FORBIDDEN", f"event details are served for app {self._app_id} only")
        return self._details(external_event_id, params["externalAccountId"])

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _unsigned(self, request: Request, body: bytes, external_event_id: str
                  ) -> Response | None:
        """The 401 answer when the v3 signature is missing, stale or wrong; None when valid."""
        signature = request.headers.get(SIGNATURE_V3_HEADER)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        try:
            if not signature or not timestamp:
                raise SignatureError(
                    "missing", f"{SIGNATURE_V3_HEADER} and {TIMESTAMP_HEADER} are required"
                )
            verify_v3(
                self._secret,
                signature=signature,
                method=request.method,
                uri=signed_uri(request, self._public_url),
                body=body,
                timestamp=timestamp,
                now_ms=self._now_ms,
            )
        except SignatureError as exc:
            log.warning("serve.signature_rejected reason=%s event=%s", exc.reason,
                        external_event_id)
            return error(401, "INVALID_SIGNATURE", f"{exc.reason}: {exc}",
                         **{"WWW-Authenticate": "HubSpot-Signature-v3"})
        return None

    def _details(self, external_event_id: str, account: str) -> Response:
        webinar = self._lookup(external_event_id) if external_event_id else None
        if webinar is None or webinar.get("accountId") != account:
            log.info("serve.event_unknown event=%s account=%s", external_event_id, account)
            return error(404, "OBJECT_NOT_FOUND",
                         f"no webinar {external_event_id} in account {account}")
        log.info("serve.event_details event=%s account=%s", external_event_id, account)
        return JSONResponse(event_details(dict(webinar)))


async def healthz(_request: Request) -> Response:
    """``GET /healthz``: 200 while the process serves requests."""
    return JSONResponse({"status": "ok"})


def readiness(ready: Readiness) -> Callable[[Request], Awaitable[Response]]:
    """``GET /readyz``: 200 when every check of ``ready`` passes, else 503, checks by name."""

    async def readyz(_request: Request) -> Response:
        checks = _checks(ready)
        ok = all(checks.values())
        return JSONResponse({"status": "ready" if ok else "not-ready", "checks": checks},
                            status_code=200 if ok else 503)

    return readyz


def create_serve_app(
    table_lookup: WebinarLookup,
    *,
    client_secret: str,
    app_id: int,
    clock: Callable[[], float] = time.time,
    telemetry: Telemetry | None = None,
    ready: Readiness = lambda: True,
    public_url: str | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The serve app. ``clock`` is epoch seconds (signature freshness); ``ready`` is called per
    ``/readyz`` request and must not block; ``extra_routes`` (the install flow) are served
    too."""
    if not client_secret:
        raise ValueError("client_secret must not be empty")
    details = EventDetails(table_lookup, client_secret=client_secret, app_id=app_id,
                           clock=clock, public_url=public_url)
    routes: list[BaseRoute] = [
        Route("/events/{externalEventId:path}", details.respond, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readiness(ready), methods=["GET"]),
    ]
    if telemetry is not None and telemetry.has_prometheus:
        routes.append(prometheus_route(telemetry))
    routes.extend(extra_routes)
    return Starlette(routes=routes)
