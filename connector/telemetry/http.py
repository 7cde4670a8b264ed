"""A wrapping ``httpx.BaseTransport``: one CLIENT span and one latency sample per HubSpot request.

Give it to the client: ``HubSpotClient(token, transport=telemetry.http_transport(inner))``. It
sees each request and its response (status known, body not yet read), so it measures the time to
the response headers. Attributes follow the HTTP semantic conventions — ``http.request.method``,
``url.full`` (emails masked, secret query values replaced by ``REDACTED``, no user info),
``url.template``, ``server.address``, ``server.port``, ``http.response.status_code``,
``error.type`` — plus ``hubspot.operation``, the client method's name found from the path.

The ``Authorization`` header is never read. Trace context is sent to the server only when asked
(``propagate=True``, e.g. against the sandbox): HubSpot has no use for our trace ids.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

import httpx
from opentelemetry import trace
from opentelemetry.trace.status import Status, StatusCode

from connector.redact import mask_emails
from connector.telemetry.metrics import Metrics
from connector.telemetry.propagation import TRACEPARENT, TRACESTATE, inject_context
from connector.telemetry.tracing import Tracing

_SEG = "[^/]+"
_PREFIX = "/marketing/v3/marketing-events"

# (method, path template under the prefix, operation): the HubSpotClient's methods. More specific
# templates first; a request matching none is reported as operation "other".
_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("POST", "/events/upsert", "batch_upsert_events"),
    ("POST", "/events/delete", "batch_delete_events"),
    ("GET", "/events/search", "search_events"),
    ("POST", "/events", "create_event"),
    ("PUT", "/events/{externalEventId}", "upsert_event"),
    ("GET", "/events/{externalEventId}", "get_event"),
    ("PATCH", "/events/{externalEventId}", "update_event"),
    ("DELETE", "/events/{externalEventId}", "delete_event"),
    ("POST", "/events/{externalEventId}/complete", "complete_event"),
    ("POST", "/events/{externalEventId}/cancel", "cancel_event"),
    ("POST", "/events/{externalEventId}/{subscriberState}/upsert", "upsert_subscriber_state"),
    ("POST", "/events/{externalEventId}/{subscriberState}/email-upsert",
     "upsert_subscriber_state_by_email"),
    ("POST", "/batch/update", "batch_update_events"),
    ("POST", "/batch/archive", "batch_archive_events"),
    ("GET", "/", "list_events"),
    ("GET", "/associations/{marketingEventId}/lists", "get_associated_lists"),
    ("PUT", "/associations/{marketingEventId}/lists/{listId}", "associate_list"),
    ("DELETE", "/associations/{marketingEventId}/lists/{listId}", "disassociate_list"),
    ("GET", "/associations/{externalAccountId}/{externalEventId}/lists",
     "get_associated_lists_by_external_id"),
    ("PUT", "/associations/{externalAccountId}/{externalEventId}/lists/{listId}",
     "associate_list_by_external_id"),
    ("DELETE", "/associations/{externalAccountId}/{externalEventId}/lists/{listId}",
     "disassociate_list_by_external_id"),
    ("POST", "/attendance/{externalEventId}/{subscriberState}/create",
     "record_external_attendance"),
    ("POST", "/attendance/{externalEventId}/{subscriberState}/email-create",
     "record_external_attendance_by_email"),
    ("POST", "/{objectId}/attendance/{subscriberState}/create", "record_attendance"),
    ("POST", "/{objectId}/attendance/{subscriberState}/email-create",
     "record_attendance_by_email"),
    ("GET", "/participations/contacts/{contactIdentifier}/breakdown",
     "get_contact_participations"),
    ("GET", "/participations/{externalAccountId}/{externalEventId}/breakdown",
     "get_participation_breakdown"),
    ("GET", "/participations/{marketingEventId}/breakdown",
     "get_participation_breakdown_by_object_id"),
    ("GET", "/participations/{externalAccountId}/{externalEventId}",
     "get_participation_counters"),
    ("GET", "/participations/{marketingEventId}", "get_participation_counters_by_object_id"),
    ("GET", "/{externalEventId}/identifiers", "find_event_identifiers"),
    ("GET", "/{appId}/settings", "get_app_settings"),
    ("POST", "/{appId}/settings", "update_app_settings"),
    ("GET", "/{objectId}", "get_event_by_object_id"),
    ("PATCH", "/{objectId}", "update_event_by_object_id"),
    ("DELETE", "/{objectId}", "delete_event_by_object_id"),
)


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{[A-Za-z]+\\\}", _SEG, re.escape(_PREFIX + template.rstrip("/")))
    return re.compile(pattern + "/?$")


_COMPILED = tuple((method, _compile(template), _PREFIX + template, operation)
                  for method, template, operation in _ROUTES)

#: Query parameters whose values are replaced by REDACTED in ``url.full``.
SECRET_QUERY_KEYS = frozenset({"hapikey", "access_token", "token", "code", "client_secret",
                               "refresh_token", "password", "signature", "key", "api_key"})


def route_of(method: str, path: str) -> tuple[str, str]:
    """(operation, url template) of a HubSpot request; ("other", path prefix) if unknown."""
    for route_method, pattern, template, operation in _COMPILED:
        if route_method == method and pattern.search(path):
            return operation, template
    return "other", _PREFIX


def safe_url(url: httpx.URL) -> str:
    """``url`` without user info, with emails masked and secret query values REDACTED."""
    query = url.query.decode("ascii", "replace")
    if query:
        pairs = [(k, "REDACTED" if k.lower() in SECRET_QUERY_KEYS else v)
                 for k, v in parse_qsl(query, keep_blank_values=True)]
        query = "?" + urlencode(pairs)
    port = f":{url.port}" if url.port is not None else ""
    path = url.raw_path.decode("ascii", "replace").partition("?")[0]
    return mask_emails(f"{url.scheme}://{url.host}{port}{path}{query}")


class TracingTransport(httpx.BaseTransport):
    """Wraps ``inner``: a CLIENT span and a latency sample (``hubspot_request``) per request."""

    def __init__(self, inner: httpx.BaseTransport, tracing: Tracing, metrics: Metrics, *,
                 propagate: bool = False,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._inner = inner
        self._tracing = tracing
        self._metrics = metrics
        self._propagate = propagate
        self._clock = clock

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        method = request.method
        # The raw path: an external id may hold an encoded "/" that must stay one segment.
        raw_path = request.url.raw_path.decode("ascii", "replace").partition("?")[0]
        operation, template = route_of(method, raw_path)
        span = self._tracing.client_span(f"{method} {template}", {
            "http.request.method": method,
            "url.full": safe_url(request.url),
            "url.template": template,
            "server.address": request.url.host,
            "server.port": request.url.port or (443 if request.url.scheme == "https" else 80),
            "hubspot.operation": operation,
        })
        if span is not None and self._propagate:
            for name, value in inject_context([], trace.set_span_in_context(span)):
                request.headers[name] = value.decode("ascii")
        elif TRACEPARENT in request.headers:
            del request.headers[TRACEPARENT]
            request.headers.pop(TRACESTATE, None)
        started = self._clock()
        try:
            response = self._inner.handle_request(request)
        except Exception as exc:
            self._metrics.hubspot_request(operation, type(exc).__name__, self._clock() - started)
            if span is not None:
                span.record_exception(exc)
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                span.end()
            raise
        status = response.status_code
        self._metrics.hubspot_request(operation, str(status), self._clock() - started)
        if span is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_attribute("error.type", str(status))
                span.set_status(Status(StatusCode.ERROR))
            span.end()
        return response

    def close(self) -> None:
        self._inner.close()
