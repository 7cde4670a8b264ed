"""``OAuthClient``: HubSpot's OAuth for a public app — the authorize URL and the v3 token endpoint.

Reference: ``hubspot-oauth-and-public-apps.md`` §1-§2. The install flow sends the installer's
browser to :meth:`OAuthClient.authorize_url`; HubSpot redirects back with ``code`` and ``state``;
:meth:`OAuthClient.exchange_code` turns the code into a :class:`TokenGrant` (access token,
refresh token, hub id, scopes, lifetime), and :meth:`OAuthClient.refresh` gets a new access token
from the refresh token before the old one expires (30 minutes).

Both grants go to ``POST /oauth/v3/token`` with a form body (``/oauth/v1/token`` is sunset on
2027-02-16). Failures are :mod:`connector.hubspot.errors` classes: a 4xx with an OAuth body is an
:class:`~connector.hubspot.errors.OAuthError` (:class:`RefreshTokenRevoked` for a refresh the
install will never get again, :class:`AuthCodeRejected` for a spent code,
:class:`OAuthClientRejected` for a wrong client id or secret); a 5xx, 429, timeout or broken
connection is the usual retriable class.

No token, code or client secret is ever logged or shown by ``repr``/``str``: a
:class:`TokenGrant` shows fingerprints (``****abcd``), error bodies are scrubbed of what was
sent, and the bodies of successful answers are never kept in errors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from connector import __version__
from connector.clock import Clock
from connector.hubspot.errors import (
    CORRELATION_HEADER,
    GrantType,
    HubSpotConnectionError,
    HubSpotTimeoutError,
    HubSpotTransportError,
    UnexpectedResponseError,
    oauth_error_from_response,
)
from connector.redact import mask_token

log = logging.getLogger("connector.hubspot.oauth")

#: Where an installer's browser goes (HubSpot's; the sandbox serves its own at the same path).
AUTHORIZE_URL = "https://app.hubspot.com/oauth/authorize"
#: The token endpoint of OAuth v3 (form bodies only), on the API's host.
TOKEN_PATH = "/oauth/v3/token"
#: The marketing-events scopes (reference: Marketing Events, scopes); writing needs ``write``.
READ_SCOPE = "crm.objects.marketing_events.read"
WRITE_SCOPE = "crm.objects.marketing_events.write"
MARKETING_EVENT_SCOPES = (READ_SCOPE, WRITE_SCOPE)

# A token call is small and rare (an install, or one refresh per account every ~30 minutes), but
# it sits in front of a request the sink wants to send: bounded tightly, retried by the caller.
OAUTH_TIMEOUT = httpx.Timeout(connect=5.0, read=15.0, write=5.0, pool=5.0)
# Several accounts may refresh at once (one thread each); one connection each, kept alive.
OAUTH_LIMITS = httpx.Limits(max_connections=8, max_keepalive_connections=4, keepalive_expiry=30.0)


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What the token endpoint granted: ``obtained_at`` (epoch seconds) is when the request was
    sent, so ``expires_at`` errs early. Tokens are left out of ``repr``/``str``."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    hub_id: int | None
    scopes: tuple[str, ...]
    expires_in: int
    obtained_at: float

    @property
    def expires_at(self) -> float:
        """Epoch seconds at which the access token expires."""
        return self.obtained_at + self.expires_in

    @property
    def fingerprint(self) -> str:
        """The access token masked (``****abcd``), safe to print."""
        return mask_token(self.access_token)


class OAuthClient:
    """A synchronous client for HubSpot's OAuth endpoints, for one app (client id + secret).

    Thread-safe: several accounts' refreshes may run at once on one client.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        *,
        scopes: Iterable[str] = MARKETING_EVENT_SCOPES,
        optional_scopes: Iterable[str] = (),
        base_url: str = "https://api.hubapi.com",
        authorize_url: str = AUTHORIZE_URL,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = OAUTH_TIMEOUT,
        limits: httpx.Limits = OAUTH_LIMITS,
        clock: Clock = time.time,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("client_id and client_secret are required")
        self.client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.scopes = tuple(scopes)
        self.optional_scopes = tuple(optional_scopes)
        self._authorize_url = authorize_url
        self._base_url = base_url
        self._clock = clock
        self._http = httpx.Client(
            base_url=base_url,
            transport=transport,
            timeout=timeout,
            limits=limits,
            follow_redirects=False,
            headers={
                "Accept": "application/json",
                "User-Agent": f"webinar-hubspot-connector/{__version__}",
            },
        )

    def __repr__(self) -> str:
        return f"OAuthClient(client_id={self.client_id!r}, base_url={self._base_url!r})"

    def __enter__(self) -> OAuthClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()

    # ----------------------------------------------------------------- the install flow

    def authorize_url(
        self,
        state: str,
        *,
        scopes: Iterable[str] | None = None,
        optional_scopes: Iterable[str] | None = None,
    ) -> str:
        """Where to send the installer: HubSpot's authorize page for this app, asking for
        ``scopes`` (default: the client's) space-separated, ``optional_scope`` when any, and
        ``state`` to be echoed to the redirect URI."""
        wanted = tuple(self.scopes if scopes is None else scopes)
        optional = tuple(self.optional_scopes if optional_scopes is None else optional_scopes)
        query: dict[str, str] = {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(wanted),
        }
        if optional:
            query["optional_scope"] = " ".join(optional)
        query["state"] = state
        return f"{self._authorize_url}?{urlencode(query, quote_via=quote)}"

    def exchange_code(self, code: str) -> TokenGrant:
        """The grant for an authorization code (single use, short-lived).

        Raises :class:`AuthCodeRejected` for a spent, expired or unknown code (or a redirect URI
        other than the authorize request's), :class:`OAuthClientRejected` for a wrong client
        id or secret; 5xx/429/network failures are retriable errors.
        """
        grant = self._token("authorization_code", {"code": code,
                                                   "redirect_uri": self.redirect_uri}, code)
        if grant.hub_id is None:
            raise UnexpectedResponseError("HubSpot's token answer has no hub_id", status=200,
                                          method="POST", path=TOKEN_PATH, body=b"")
        return grant

    def refresh(self, refresh_token: str) -> TokenGrant:
        """A new access token for ``refresh_token``.

        HubSpot answers with the same refresh token (observed); when an answer carries none,
        the grant keeps ``refresh_token``. Raises :class:`RefreshTokenRevoked` when the install
        is gone (uninstalled, token revoked, account deleted), :class:`OAuthClientRejected`
        for a wrong client id or secret; 5xx/429/network failures are retriable errors.
        """
        grant = self._token("refresh_token", {"refresh_token": refresh_token}, refresh_token)
        if not grant.refresh_token:
            grant = TokenGrant(grant.access_token, refresh_token, grant.hub_id, grant.scopes,
                               grant.expires_in, grant.obtained_at)
        return grant

    # ----------------------------------------------------------------- one token request

    def _token(self, grant_type: GrantType, fields: Mapping[str, str], secret: str) -> TokenGrant:
        form = {"grant_type": grant_type, "client_id": self.client_id,
                "client_secret": self._client_secret, **fields}
        obtained_at = self._clock()
        response = self._send(form)
        if not response.is_success:
            body = _scrub(response.content, (secret, self._client_secret))
            error = oauth_error_from_response(response.status_code, response.headers, body,
                                              grant_type=grant_type, path=TOKEN_PATH)
            log.info("hubspot.oauth_error grant_type=%s status=%s error=%s category=%s "
                     "correlation_id=%s", grant_type, response.status_code,
                     getattr(error, "error", None), error.category, error.correlation_id)
            raise error
        grant = _grant_from(response, obtained_at)
        log.debug("hubspot.oauth_grant grant_type=%s hub_id=%s expires_in=%s correlation_id=%s",
                  grant_type, grant.hub_id, grant.expires_in,
                  response.headers.get(CORRELATION_HEADER))
        return grant

    def _send(self, form: Mapping[str, str]) -> httpx.Response:
        try:
            return self._http.post(TOKEN_PATH, data=dict(form))
        except httpx.TimeoutException as exc:
            log.warning("hubspot.timeout method=POST path=%s kind=%s", TOKEN_PATH,
                        type(exc).__name__)
            raise HubSpotTimeoutError(f"timed out talking to HubSpot ({type(exc).__name__})",
                                      method="POST", path=TOKEN_PATH) from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
            log.warning("hubspot.connection_error method=POST path=%s kind=%s", TOKEN_PATH,
                        type(exc).__name__)
            raise HubSpotConnectionError(f"connection to HubSpot failed ({type(exc).__name__})",
                                         method="POST", path=TOKEN_PATH) from exc
        except httpx.RequestError as exc:
            raise HubSpotTransportError(f"request to HubSpot failed ({type(exc).__name__})",
                                        method="POST", path=TOKEN_PATH) from exc


def _scrub(content: bytes, secrets: Iterable[str]) -> bytes:
    for secret in secrets:
        if secret:
            content = content.replace(secret.encode(), mask_token(secret).encode())
    return content


def _grant_from(response: httpx.Response, obtained_at: float) -> TokenGrant:
    """The grant in a 2xx answer (snake_case wire keys); the body is never kept in errors."""

    def unexpected(what: str) -> UnexpectedResponseError:
        return UnexpectedResponseError(f"HubSpot's token answer {what}",
                                       status=response.status_code, method="POST",
                                       path=TOKEN_PATH, body=b"")

    try:
        data: Any = response.json()
    except ValueError:
        raise unexpected("is not JSON") from None
    if not isinstance(data, dict):
        raise unexpected("is not a JSON object")
    access = data.get("access_token")
    expires_in = data.get("expires_in")
    if not isinstance(access, str) or not access:
        raise unexpected("has no access_token")
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
        raise unexpected("has no positive expires_in")
    refresh = data.get("refresh_token")
    hub_id = data.get("hub_id")
    scopes = data.get("scopes")
    return TokenGrant(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) else "",
        hub_id=hub_id if isinstance(hub_id, int) and not isinstance(hub_id, bool) else None,
        scopes=tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else (),
        expires_in=expires_in,
        obtained_at=obtained_at,
    )
