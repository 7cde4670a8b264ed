"""One HTTP exchange with HubSpot: send, translate failures once, parse, log.

This is the only place that touches httpx exceptions and response objects:

* httpx ``TimeoutException`` -> :class:`HubSpotTimeoutError`, ``NetworkError``/
  ``RemoteProtocolError``/``ProxyError`` -> :class:`HubSpotConnectionError`, any other
  ``httpx.RequestError`` -> :class:`HubSpotTransportError` — each ``raise ... from exc``;
* a non-2xx status -> the :class:`HubSpotHTTPError` subclass for it (:func:`error_from_response`);
* a 2xx body that is not the documented shape -> :class:`UnexpectedResponseError`.

Log lines are ``event key=value`` with lazy arguments; paths and queries have emails masked and
the token (sent by :class:`BearerAuth`, never stored in headers we print) never appears.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import orjson
from pydantic import BaseModel
from pydantic import ValidationError as _PydanticValidationError

from connector.hubspot.errors import (
    CORRELATION_HEADER,
    HubSpotConnectionError,
    HubSpotTimeoutError,
    HubSpotTransportError,
    UnexpectedResponseError,
    error_from_response,
)
from connector.hubspot.ratelimit import RateLimitStatus
from connector.redact import mask_emails, mask_token

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
log = logging.getLogger("connector.hubspot")

Params = Mapping[str, str | int | None]


@dataclass(frozen=True, slots=True)
class Response(Generic[T]):
    """A successful call: the typed ``value`` plus what the response said about limits.

    ``status`` distinguishes 200 from 207 (partial batch) and 202/204; ``rate_limit`` is the
    parsed ``X-HubSpot-RateLimit-*`` headers (None when absent).
    """

    value: T
    status: int
    rate_limit: RateLimitStatus | None
    correlation_id: str | None


def checked_token(token: str) -> str:
    """``token``, if it can go in an ``Authorization`` header (ValueError if not)."""
    if not token or any(c in token for c in "\r\n"):
        raise ValueError("token must be a non-empty single-line string")
    return token


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <token>``; its repr shows only a masked fingerprint."""

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        self._token = checked_token(token)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    @property
    def fingerprint(self) -> str:
        """The masked token (last 4 characters at most), safe to print."""
        return mask_token(self._token)

    def scrub(self, content: bytes) -> bytes:
        """``content`` with any echo of the token replaced by its fingerprint."""
        return content.replace(self._token.encode(), self.fingerprint.encode())

    def __repr__(self) -> str:
        return f"BearerAuth(token={self.fingerprint!r})"


class RefreshingBearerAuth(BearerAuth):
    """A bearer token asked of ``bearer()`` for every request (an OAuth access token, which
    its provider refreshes before it expires). A 401 ``EXPIRED_AUTHENTICATION`` answer
    reports the token to ``expired(token)`` and sends the request once more with a fresh one:
    a token can expire between the provider's look at the clock and HubSpot's. Any other 401,
    or a second one, is the caller's answer (reference OAuth §4: a 401 alone is no refresh
    signal), unless ``any_401``: then every first 401 refreshes, which is how an uninstall
    shows (the refresh is refused; reference OAuth §4: "if all calls 401 and refresh fails,
    treat as uninstalled"). Safe to share between threads: each request keeps its own token."""

    __slots__ = ("_any_401", "_bearer", "_expired", "_recent")
    requires_response_body = True

    def __init__(self, bearer: Callable[[], str], expired: Callable[[str], object], *,
                 any_401: bool = False) -> None:
        self._bearer = bearer
        self._expired = expired
        self._any_401 = any_401
        self._recent: deque[str] = deque(maxlen=2)  # echoes of these are scrubbed
        self._token = ""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._current()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and (self._any_401 or says_expired(response.content)):
            self._expired(token)
            request.headers["Authorization"] = f"Bearer {self._current()}"
            yield request

    def _current(self) -> str:
        token = checked_token(self._bearer())
        if token != self._token:
            self._token = token
            self._recent.append(token)
        return token

    def scrub(self, content: bytes) -> bytes:
        for token in tuple(self._recent):
            content = content.replace(token.encode(), mask_token(token).encode())
        return content

    def __repr__(self) -> str:
        return f"RefreshingBearerAuth(token={self.fingerprint!r})"


def says_expired(content: bytes) -> bool:
    """A 401 body of HubSpot's saying the OAuth token expired (``EXPIRED_AUTHENTICATION``)."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return False
    return isinstance(body, dict) and body.get("category") == "EXPIRED_AUTHENTICATION"


@dataclass(frozen=True, slots=True)
class JsonContent:
    """A request body already encoded, byte for byte as httpx's ``json=`` encodes it (compact
    separators, UTF-8, nothing escaped beyond what JSON requires): see :func:`plain_json`."""

    content: bytes


#: orjson's natively written types that the stdlib writes otherwise or refuses (subclasses of
#: str/int/dict/list, datetimes, dataclasses) go to its ``default``; none is given, so it raises.
_PLAIN = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | \
    orjson.OPT_PASSTHROUGH_DATACLASS


def plain_json(body: Any) -> Any:
    """``body`` encoded by orjson (a tenth of the stdlib's cost on a 100-input batch), or
    ``body`` itself when orjson will not write it exactly as httpx would (a key that is not a
    str, an int beyond 64 bits, a lone surrogate, a subclass...): httpx encodes it then.

    Only for bodies whose leaves the caller knows are str, int, bool or None: orjson also
    writes floats (differently from the stdlib), enums and UUIDs, which are not checked here.
    """
    try:
        return JsonContent(orjson.dumps(body, option=_PLAIN))
    except orjson.JSONEncodeError:
        return body


class FromJson(Generic[M]):
    """The parser of a body that is one pydantic model, which reads the bytes straight into the
    model (``model_validate_json``: half the cost of ``json.loads`` then ``model_validate`` on a
    100-result batch). A body it refuses is read the ``json.loads`` way (:meth:`__call__`),
    whose verdict stands: the same value or the same error as a plain ``model_validate``."""

    __slots__ = ("model",)

    def __init__(self, model: type[M]) -> None:
        self.model = model

    def __call__(self, data: Any) -> M:
        return self.model.model_validate(data)

    def from_json(self, content: bytes) -> M:
        """The model read from the body's bytes (pydantic's ValidationError if it cannot)."""
        return self.model.model_validate_json(content)


def no_body(_: Any) -> None:
    """The parser of answers without a value (204, or a body nobody reads)."""
    return None


def quote_segment(value: str | int) -> str:
    """One path segment, percent-encoded (external IDs may contain '/', '?', spaces...)."""
    return quote(str(value), safe="")


def _masked_target(request: httpx.Request) -> str:
    target = request.url.raw_path.decode("ascii", "replace")
    return mask_emails(target)


class Wire:
    """Sends requests through an ``httpx.Client`` and turns responses into values or errors."""

    def __init__(self, http: httpx.Client, auth: BearerAuth) -> None:
        self._http = http
        self._auth = auth
        self.last_rate_limit: RateLimitStatus | None = None

    def call(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        params: Params | None = None,
        json_body: Any = None,
        body_optional: bool = False,
    ) -> Response[T]:
        """Send one request; return ``parse(json)`` (``parse(None)`` for an empty body).

        ``json_body``: a JSON value (httpx encodes it) or a :class:`JsonContent`, sent as it is.
        ``body_optional``: the reference documents no body, so a non-JSON body parses as None.
        """
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        request = self._request(method, path, clean, json_body)
        target = _masked_target(request)
        response = self._send(request, method, target)
        rate_limit = RateLimitStatus.from_headers(response.headers)
        self.last_rate_limit = rate_limit
        correlation_id = response.headers.get(CORRELATION_HEADER)
        if not response.is_success:
            error = error_from_response(
                response.status_code,
                response.headers,
                self._auth.scrub(response.content),
                method=method,
                path=target,
                rate_limit=rate_limit,
            )
            log.info(
                "hubspot.error method=%s path=%s status=%s category=%s correlation_id=%s "
                "retry_after=%s remaining=%s",
                method,
                target,
                error.status,
                error.category,
                error.correlation_id,
                error.retry_after,
                rate_limit.remaining if rate_limit else None,
            )
            raise error
        log.debug(
            "hubspot.response method=%s path=%s status=%s correlation_id=%s remaining=%s",
            method,
            target,
            response.status_code,
            correlation_id,
            rate_limit.remaining if rate_limit else None,
        )
        value = self._parse(response, parse, method, target, body_optional)
        return Response(value, response.status_code, rate_limit, correlation_id)

    def _request(self, method: str, path: str, params: Params,
                 json_body: Any) -> httpx.Request:
        """The request; a :class:`JsonContent` body is sent as it is, with the headers (and
        their order) that ``json=`` would give. No parameters are passed as None: httpx then
        skips merging an empty query into the URL (parsing it once more, for the same URL)."""
        query = params or None
        if not isinstance(json_body, JsonContent):
            return self._http.build_request(method, path, params=query, json=json_body)
        request = self._http.build_request(method, path, params=query,
                                           content=json_body.content)
        request.headers["Content-Type"] = "application/json"  # after Content-Length, as json=
        return request

    def _send(self, request: httpx.Request, method: str, target: str) -> httpx.Response:
        try:
            return self._http.send(request)
        except httpx.TimeoutException as exc:
            log.warning(
                "hubspot.timeout method=%s path=%s kind=%s", method, target, type(exc).__name__
            )
            raise HubSpotTimeoutError(
                f"timed out talking to HubSpot ({type(exc).__name__})", method=method, path=target
            ) from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
            log.warning(
                "hubspot.connection_error method=%s path=%s kind=%s",
                method,
                target,
                type(exc).__name__,
            )
            raise HubSpotConnectionError(
                f"connection to HubSpot failed ({type(exc).__name__})", method=method, path=target
            ) from exc
        except httpx.RequestError as exc:
            log.warning(
                "hubspot.transport_error method=%s path=%s kind=%s",
                method,
                target,
                type(exc).__name__,
            )
            raise HubSpotTransportError(
                f"request to HubSpot failed ({type(exc).__name__})", method=method, path=target
            ) from exc

    @staticmethod
    def _parse(
        response: httpx.Response,
        parse: Callable[[Any], T],
        method: str,
        target: str,
        body_optional: bool,
    ) -> T:
        content = response.content
        if isinstance(parse, FromJson):
            try:
                value: T = parse.from_json(content)
                return value
            except _PydanticValidationError:
                pass  # read again below, for the verdict (and the error) a plain parse gives
        try:
            try:
                data = json.loads(content) if content.strip() else None
            except ValueError:
                if not body_optional:
                    raise
                data = None  # undocumented body: tolerate anything
            return parse(data)
        except (ValueError, _PydanticValidationError) as exc:
            raise UnexpectedResponseError(
                f"HubSpot returned an unexpected body ({type(exc).__name__})",
                status=response.status_code,
                method=method,
                path=target,
                body=content,
            ) from exc


class Operations:
    """Base of the endpoint groups mixed into ``HubSpotClient``: each sends through ``_call``,
    which the client provides (over its :class:`Wire`)."""

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
        raise NotImplementedError  # provided by HubSpotClient
