"""``Install``: what the registry knows of one platform account's HubSpot access.

The key is the *platform account*: the webinar platform's account id, which is HubSpot's
``externalAccountId``. An install is either

* ``oauth``: the public app installed in a HubSpot account (``hub_id``) by that customer, with
  a refresh token, the current access token and the scopes granted; several platform accounts
  may point at one hub id (one customer, several platform accounts); or
* ``private-app``: a private-app token of the customer's own, linked by an operator
  (``connector accounts link``); ``hub_id`` is known only if the operator gave it.

Times are epoch seconds. Secrets (``refresh_token``, ``access_token``) are plain here and never
shown by ``repr``/``str``; :meth:`Install.public` is the masked view for output. The registry
topic stores them encrypted (connector.installs.topic).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from connector.hubspot.oauth import TokenGrant
from connector.redact import mask_token

InstallKind = Literal["oauth", "private-app"]
InstallStatus = Literal["active", "revoked"]

OAUTH: InstallKind = "oauth"
PRIVATE_APP: InstallKind = "private-app"
ACTIVE: InstallStatus = "active"
REVOKED: InstallStatus = "revoked"


@dataclass(frozen=True, slots=True)
class Install:
    """One platform account's HubSpot install (secrets left out of ``repr``)."""

    platform_account: str
    kind: InstallKind
    hub_id: int | None
    scopes: tuple[str, ...]
    status: InstallStatus
    refresh_token: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    access_expires_at: float | None = None
    installed_at: float = 0.0
    updated_at: float = 0.0
    revoked_reason: str | None = None

    def __post_init__(self) -> None:
        if not self.platform_account:
            raise ValueError("platform_account must not be empty")
        if self.kind not in (OAUTH, PRIVATE_APP):
            raise ValueError(f"kind must be oauth or private-app, not {self.kind!r}")
        if self.status not in (ACTIVE, REVOKED):
            raise ValueError(f"status must be active or revoked, not {self.status!r}")
        if self.kind == OAUTH and (not self.refresh_token or self.hub_id is None):
            raise ValueError("an oauth install needs a refresh token and a hub id")
        if self.kind == PRIVATE_APP and not self.access_token:
            raise ValueError("a private-app link needs its access token")

    # ----------------------------------------------------------------- making one

    @classmethod
    def from_grant(cls, platform_account: str, grant: TokenGrant, *, now: float) -> Install:
        """The install an authorization code's grant makes (the OAuth callback)."""
        return cls(platform_account=platform_account, kind=OAUTH, hub_id=grant.hub_id,
                   scopes=grant.scopes, status=ACTIVE, refresh_token=grant.refresh_token,
                   access_token=grant.access_token, access_expires_at=grant.expires_at,
                   installed_at=now, updated_at=now)

    @classmethod
    def private_app(cls, platform_account: str, token: str, *, hub_id: int | None = None,
                    now: float) -> Install:
        """A private-app token of the account's own (it does not expire; scopes unknown)."""
        return cls(platform_account=platform_account, kind=PRIVATE_APP, hub_id=hub_id,
                   scopes=(), status=ACTIVE, access_token=token, installed_at=now,
                   updated_at=now)

    def refreshed(self, grant: TokenGrant, *, now: float) -> Install:
        """This install after a refresh: the new access token, and the refresh token and
        scopes the answer carried (kept when it carried none)."""
        return dataclasses.replace(
            self, access_token=grant.access_token, access_expires_at=grant.expires_at,
            refresh_token=grant.refresh_token or self.refresh_token,
            scopes=grant.scopes or self.scopes, updated_at=now)

    def revoked(self, reason: str, *, now: float) -> Install:
        """This install marked revoked (tokens kept for the record; never used again)."""
        return dataclasses.replace(self, status=REVOKED, revoked_reason=reason, updated_at=now)

    # ----------------------------------------------------------------- questions

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE

    def missing_scopes(self, required: Iterable[str]) -> tuple[str, ...]:
        """The ``required`` scopes this install was not granted (a private-app link's scopes
        are unknown: none missing)."""
        if self.kind == PRIVATE_APP:
            return ()
        return tuple(scope for scope in required if scope not in self.scopes)

    def access_fresh(self, now: float, margin: float) -> bool:
        """The access token is good for more than ``margin`` seconds from ``now`` (a
        private-app token always is)."""
        if self.kind == PRIVATE_APP:
            return True
        return (self.access_token is not None and self.access_expires_at is not None
                and self.access_expires_at - now > margin)

    def public(self) -> dict[str, Any]:
        """Plain data safe to print: secrets as fingerprints (``****abcd``), times in ISO 8601."""
        return {
            "platformAccount": self.platform_account,
            "kind": self.kind,
            "hubId": self.hub_id,
            "status": self.status,
            "scopes": list(self.scopes),
            "refreshToken": mask_token(self.refresh_token) if self.refresh_token else None,
            "accessToken": mask_token(self.access_token) if self.access_token else None,
            "accessExpiresAt": iso(self.access_expires_at),
            "installedAt": iso(self.installed_at),
            "updatedAt": iso(self.updated_at),
            "revokedReason": self.revoked_reason,
        }


def iso(seconds: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC to the second (None stays None)."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
