"""The eventDetailsUrl callback: HubSpot asks the app for an unknown event's details.

`GET {eventDetailsUrl with %s -> externalEventId}?appId=<appId>&externalAccountId=<acct>`, signed
with X-HubSpot-Signature-v3 / X-HubSpot-Request-Timestamp (and v2 for older verifiers) using the
app's client secret (reference §3.13, §7). The httpx transport is injectable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from connector.sandbox.signature import sign_v2, sign_v3


def callback_url(template: str, external_event_id: str, app_id: int, account: str | None) -> str:
    """The URL HubSpot calls for one event."""
    base = template.replace("%s", quote(external_event_id, safe=""))
    params: dict[str, str] = {"appId": str(app_id)}
    if account is not None:
        params["externalAccountId"] = account
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}{urlencode(params)}"


@dataclass(frozen=True)
class CallbackOutcome:
    """Result of one callback: the event details when the app answered usefully."""

    url: str
    status: int | None
    details: dict[str, Any] | None
    error: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def as_log(self) -> dict[str, Any]:
        """Admin view."""
        return {
            "url": self.url,
            "status": self.status,
            "error": self.error,
            "details": self.details,
        }


class EventDetailsFetcher:
    """Calls apps' eventDetailsUrl with signed requests."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None, timeout: float) -> None:
        self._transport = transport
        self._timeout = timeout

    async def fetch(
        self,
        *,
        template: str,
        external_event_id: str,
        app_id: int,
        account: str | None,
        client_secret: str,
        now_ms: int,
    ) -> CallbackOutcome:
        """Call the app; never raises for network or protocol problems (they are outcomes)."""
        url = callback_url(template, external_event_id, app_id, account)
        timestamp = str(now_ms)
        headers = {
            "X-HubSpot-Signature-v3": sign_v3(client_secret, "GET", url, "", timestamp),
            "X-HubSpot-Request-Timestamp": timestamp,
            "X-HubSpot-Signature": sign_v2(client_secret, "GET", url, ""),
            "X-HubSpot-Signature-Version": "v2",
            "Accept": "application/json",
            "User-Agent": "HubSpot Marketing Events Sandbox",
        }
        try:
            async with httpx.AsyncClient(
                transport=self._transport, timeout=self._timeout
            ) as client:
                response = await client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            return CallbackOutcome(url, None, None, f"{type(exc).__name__}: {exc}", headers)
        if response.status_code != 200:
            return CallbackOutcome(url, response.status_code, None, "non-200 answer", headers)
        try:
            details = response.json()
        except ValueError:
            return CallbackOutcome(url, 200, None, "answer is not JSON", headers)
        if not isinstance(details, dict):
            return CallbackOutcome(url, 200, None, "answer is not a JSON object", headers)
        for required in ("eventName", "eventOrganizer"):
            if not isinstance(details.get(required), str) or not details[required]:
                return CallbackOutcome(url, 200, None, f"answer lacks {required}", headers)
        return CallbackOutcome(url, 200, details, None, headers)
