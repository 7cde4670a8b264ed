"""``AccountRoutes``: which HubSpot account, token and rate budget a platform account writes to.

Two modes, one question (``resolve(platform_account)``):

* **private-app** (``CONNECTOR_HUBSPOT__MODE=private-app``, the default, as before): every
  platform account resolves to the one :class:`Route` of ``CONNECTOR_HUBSPOT__ACCESS_TOKEN``,
  account key ``default``, the sink's ``window_limit``;
* **app**: each platform account resolves through its install (connector.installs.registry):
  an OAuth install's route has the hub id as its account key (two platform accounts of one
  HubSpot account share one budget) and HubSpot's 110 requests / 10 s per installing account;
  a private-app link's route has ``private:<sha256 prefix of its token>`` and the sink's
  ``window_limit``. An account that cannot be written to gets a :class:`NoRoute` with the
  reason its commands are dead-lettered with:

  ================================  ==============================================================
  ``no-hubspot-install``            no install (never installed, or unlinked)
  ``hubspot-install-revoked``       uninstalled (refresh refused) or revoked by an operator
  ``hubspot-missing-scopes``        the install lacks ``crm.objects.marketing_events.write``
  ``hubspot-install-unreadable``    its record does not decrypt with the configured keys: an
                                    operator's mistake to fix (put the key back), not the
                                    account's; better parked or retried than dead-lettered
  ================================  ==============================================================

A :class:`Route` answers ``bearer()`` (the current token, refreshed when due) and
``expired(token)`` (after a 401 ``EXPIRED_AUTHENTICATION``: the next ``bearer()`` refreshes).
The sink sends every request to one HubSpot account with a :class:`HubBearer`: the token of any
of the platform accounts routed there that still has an active install, so an operator revoking
one of them (or unlinking it) never takes the others' requests down with it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal, Protocol

from connector.config import Settings
from connector.errors import ConfigError
from connector.hubspot.oauth import WRITE_SCOPE
from connector.installs.errors import InstallNotFound, InstallRevoked, InstallUnreadable
from connector.installs.model import OAUTH, PRIVATE_APP, InstallKind
from connector.installs.tokens import AccessTokens

#: HubSpot's limit for a marketplace OAuth app, per installing account (reference OAuth §5).
OAUTH_WINDOW_LIMIT = 110
OAUTH_WINDOW_SECONDS = 10
#: The account key of private-app mode's one route.
DEFAULT_ACCOUNT_KEY = "default"

NO_INSTALL = "no-hubspot-install"
INSTALL_REVOKED = "hubspot-install-revoked"
MISSING_SCOPES = "hubspot-missing-scopes"
INSTALL_UNREADABLE = "hubspot-install-unreadable"
NoRouteReason = Literal["no-hubspot-install", "hubspot-install-revoked", "hubspot-missing-scopes",
                        "hubspot-install-unreadable"]


class Credentials(Protocol):
    """Where a route's token comes from (:class:`AccessTokens`, or :class:`StaticToken`)."""

    def bearer(self, platform_account: str) -> str: ...
    def invalidate(self, platform_account: str, token: str) -> bool: ...


class StaticToken:
    """Private-app mode's one token: never refreshed, a 401 changes nothing."""

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        self._token = token

    def bearer(self, platform_account: str) -> str:
        return self._token

    def invalidate(self, platform_account: str, token: str) -> bool:
        return False

    def __repr__(self) -> str:
        return "StaticToken(****)"


@dataclass(frozen=True, slots=True)
class Route:
    """Where one platform account's requests go and under which rate budget.

    ``account_key`` names the budget (and the HubSpot account in metrics): the hub id for an
    OAuth install, ``private:<hash>`` for a private-app link, ``default`` in private-app mode;
    never a token.
    """

    platform_account: str
    account_key: str
    kind: InstallKind
    hub_id: int | None
    window_limit: int
    window_seconds: int
    credentials: Credentials = field(repr=False, compare=False)

    def bearer(self) -> str:
        """The token to send now (refreshed first when due)."""
        return self.credentials.bearer(self.platform_account)

    def expired(self, token: str) -> bool:
        """HubSpot said ``token`` expired (401 EXPIRED_AUTHENTICATION): the next
        :meth:`bearer` refreshes; True when that changed anything."""
        return self.credentials.invalidate(self.platform_account, token)


@dataclass(frozen=True, slots=True)
class NoRoute:
    """The platform account cannot be written to; ``reason`` is the dead-letter reason."""

    platform_account: str
    reason: NoRouteReason
    detail: str


class HubBearer:
    """The bearer of one HubSpot account (a budget key) that several platform accounts may
    write to: HubSpot takes any of their tokens (one app, one hub), so the token of the account
    first routed there is sent while its install lasts, then another routed account's.

    ``accounts`` is the live set of platform accounts routed to the HubSpot account (the sink's
    destination adds to it). When every install is gone, the current account's failure is
    raised: an uninstall of the app from the hub revokes each of them in turn, as it should.
    Thread-safe: the accounts are copied before they are tried.
    """

    def __init__(self, credentials: Credentials, first: str, accounts: set[str]) -> None:
        self._credentials = credentials
        self._current = first
        self._accounts = accounts

    def __repr__(self) -> str:
        return f"HubBearer(current={self._current!r})"

    def bearer(self) -> str:
        """A token of an active install routed here, the current account's first."""
        current = self._current
        failure: InstallNotFound | InstallRevoked | None = None
        for account in [current, *sorted(self._accounts - {current})]:
            try:
                token = self._credentials.bearer(account)
            except (InstallNotFound, InstallRevoked) as exc:
                failure = failure or exc
                continue
            self._current = account
            return token
        assert failure is not None  # the current account was tried
        raise failure

    def expired(self, token: str) -> bool:
        """A 401 EXPIRED_AUTHENTICATION refused ``token``: the next :meth:`bearer` refreshes
        the current account's (True when that changed anything)."""
        return self._credentials.invalidate(self._current, token)


def private_key(token: str) -> str:
    """The budget key of a private-app token: stable, not secret (12 hex digits of SHA-256)."""
    return "private:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


class AccountRoutes:
    """Resolves platform accounts to routes, in either mode (thread-safe)."""

    def __init__(self, *, mode: Literal["private-app", "app"], private_window_limit: int,
                 window_seconds: int = OAUTH_WINDOW_SECONDS, static_token: str | None = None,
                 tokens: AccessTokens | None = None,
                 oauth_window_limit: int = OAUTH_WINDOW_LIMIT,
                 required_scopes: tuple[str, ...] = (WRITE_SCOPE,)) -> None:
        self.mode = mode
        self._tokens = tokens
        self._private_limit = private_window_limit
        self._window_seconds = window_seconds
        self._oauth_limit = oauth_window_limit
        self._required = required_scopes
        self._default: Route | None = None
        if mode == "private-app":
            if not static_token:
                raise ValueError("private-app mode needs the access token")
            self._default = Route("*", DEFAULT_ACCOUNT_KEY, PRIVATE_APP, None,
                                  private_window_limit, window_seconds, StaticToken(static_token))
        elif tokens is None:
            raise ValueError("app mode needs AccessTokens over the install registry")

    @classmethod
    def from_settings(cls, settings: Settings, tokens: AccessTokens | None = None
                      ) -> AccountRoutes:
        """Routes as ``settings`` say: ``tokens`` is required in app mode."""
        hubspot, sink = settings.hubspot, settings.sink
        if hubspot.mode == "private-app":
            token = hubspot.access_token.get_secret_value() if hubspot.access_token else ""
            if not token:
                raise ConfigError("CONNECTOR_HUBSPOT__ACCESS_TOKEN ([hubspot] access_token) is "
                                  "required in private-app mode (CONNECTOR_HUBSPOT__MODE)")
            return cls(mode="private-app", private_window_limit=sink.window_limit,
                       window_seconds=sink.window_seconds, static_token=token)
        return cls(mode="app", private_window_limit=sink.window_limit,
                   window_seconds=sink.window_seconds, tokens=tokens)

    def resolve(self, platform_account: str) -> Route | NoRoute:
        """The route of ``platform_account``, or why it has none."""
        if self._default is not None:
            return Route(platform_account, DEFAULT_ACCOUNT_KEY, PRIVATE_APP, None,
                         self._default.window_limit, self._default.window_seconds,
                         self._default.credentials)
        tokens = self._tokens
        assert tokens is not None  # app mode (checked at construction)
        try:
            install = tokens.install(platform_account)
        except InstallUnreadable as exc:
            return NoRoute(platform_account, "hubspot-install-unreadable", exc.reason)
        if install is None:
            return NoRoute(platform_account, "no-hubspot-install",
                           f"platform account {platform_account!r} has no HubSpot install")
        if not install.is_active:
            return NoRoute(platform_account, "hubspot-install-revoked",
                           install.revoked_reason or "revoked")
        missing = install.missing_scopes(self._required)
        if missing:
            return NoRoute(platform_account, "hubspot-missing-scopes",
                           f"the install of hub {install.hub_id} lacks {', '.join(missing)}")
        if install.kind == OAUTH:
            return Route(platform_account, str(install.hub_id), OAUTH, install.hub_id,
                         self._oauth_limit, OAUTH_WINDOW_SECONDS, tokens)
        return Route(platform_account, private_key(install.access_token or ""), PRIVATE_APP,
                     install.hub_id, self._private_limit, self._window_seconds, tokens)
