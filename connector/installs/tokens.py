"""``AccessTokens``: the bearer token of each install, refreshed before it expires.

:meth:`AccessTokens.bearer` gives the cached access token while it is good for more than the
margin (``CONNECTOR_INSTALLS__REFRESH_MARGIN_SECONDS``, 300 s), else refreshes it with the
install's refresh token. A refresh happens once per account however many threads ask at once:
each account has a lock of its own, taken only to refresh, so one account's refresh never blocks
another account's requests; the threads that waited on an account's refresh take its token, or
its failure, without calling HubSpot again. The refreshed install is written back to the
registry, so other instances use the new token instead of refreshing too (the write is best
effort: if the registry is away this instance keeps the token, and logs).

A 401 ``EXPIRED_AUTHENTICATION`` calls :meth:`AccessTokens.invalidate` with the token that was
refused: the next :meth:`bearer` refreshes (unless the token was replaced meanwhile). A refresh
refused for good (:class:`~connector.hubspot.errors.RefreshTokenRevoked`: uninstalled, revoked,
account gone) marks the install revoked, writes that to the registry and raises
:class:`InstallRevoked`. A private-app link's token is static: it is returned as it is.

Transient failures of the token endpoint (5xx, 429, network) and
:class:`~connector.hubspot.errors.OAuthClientRejected` (the app's own credentials are wrong)
are raised unchanged, for the caller's retry policy.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

import httpx

from connector.clock import Clock
from connector.config import Settings
from connector.errors import ConfigError
from connector.hubspot.errors import RefreshTokenRevoked
from connector.hubspot.oauth import OAuthClient, TokenGrant
from connector.installs.errors import InstallError, InstallNotFound, InstallRevoked
from connector.installs.model import PRIVATE_APP, Install

log = logging.getLogger(__name__)

#: Refresh an access token this long before it expires, by default.
REFRESH_MARGIN_SECONDS = 300.0


class InstallLookup(Protocol):
    """Where installs are read (an :class:`~connector.installs.registry.InstallTable`)."""

    def get(self, platform_account: str) -> Install | None: ...


class InstallStore(Protocol):
    """Where installs are written (an :class:`~connector.installs.registry.InstallWriter`)."""

    def put(self, install: Install) -> None: ...


class TokenRefresher(Protocol):
    """What refreshes an access token (an :class:`~connector.hubspot.oauth.OAuthClient`)."""

    def refresh(self, refresh_token: str) -> TokenGrant: ...


def oauth_client_from(settings: Settings, *, transport: httpx.BaseTransport | None = None,
                      clock: Clock = time.time) -> OAuthClient:
    """The app's OAuth client as ``[hubspot]`` describes it (client id and secret, redirect
    URL, scopes, authorize page; the token endpoint on ``base_url``)."""
    hubspot = settings.hubspot
    if not hubspot.client_id or hubspot.client_secret is None or not hubspot.redirect_url:
        raise ConfigError("the OAuth client needs CONNECTOR_HUBSPOT__CLIENT_ID, "
                          "CONNECTOR_HUBSPOT__CLIENT_SECRET and CONNECTOR_HUBSPOT__REDIRECT_URL")
    return OAuthClient(hubspot.client_id, hubspot.client_secret.get_secret_value(),
                       hubspot.redirect_url, scopes=hubspot.scopes,
                       optional_scopes=hubspot.optional_scopes, base_url=hubspot.base_url,
                       authorize_url=hubspot.authorize_url, transport=transport, clock=clock)


class _Slot:
    """One account's refresh: its lock, attempts so far, and the last attempt's failure."""

    __slots__ = ("attempts", "failure", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.attempts = 0
        self.failure: Exception | None = None


class AccessTokens:
    """Current access tokens per platform account (thread-safe)."""

    def __init__(self, installs: InstallLookup, oauth: TokenRefresher | None,
                 store: InstallStore | None = None, *,
                 margin_seconds: float = REFRESH_MARGIN_SECONDS, clock: Clock = time.time):
        self._installs = installs
        self._oauth = oauth
        self._store = store
        self._margin = margin_seconds
        self._clock = clock
        self._slots: dict[str, _Slot] = {}
        self._slots_lock = threading.Lock()
        #: Installs this instance changed (refreshed, revoked) and the table may not hold yet.
        self._local: dict[str, Install] = {}
        self._local_lock = threading.Lock()
        #: The access token a 401 EXPIRED_AUTHENTICATION refused, per account.
        self._refused: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: Settings, installs: InstallLookup,
                      store: InstallStore | None, oauth: TokenRefresher | None = None, *,
                      clock: Clock = time.time) -> AccessTokens:
        """Tokens over ``installs`` (the registry's table) writing back to ``store``, with
        ``[installs] refresh_margin_seconds``; ``oauth`` defaults to :func:`oauth_client_from`."""
        return cls(installs, oauth or oauth_client_from(settings, clock=clock), store,
                   margin_seconds=settings.installs.refresh_margin_seconds, clock=clock)

    def install(self, platform_account: str) -> Install | None:
        """The newest install known for ``platform_account``: this instance's own change
        (refresh, revocation) until the table holds a later one; an unlinked account (None in
        the table) is None. Raises :class:`~connector.installs.errors.InstallUnreadable`
        from the table."""
        stored = self._installs.get(platform_account)
        local = self._local.get(platform_account)
        if local is None:
            return stored
        if stored is None or stored.updated_at > local.updated_at:
            with self._local_lock:  # a later change reached the table (or an unlink did)
                if self._local.get(platform_account) is local:
                    del self._local[platform_account]
            return stored
        return local

    def bearer(self, platform_account: str) -> str:
        """The access token to send for ``platform_account``, refreshed first when it expires
        within the margin (or a 401 refused it).

        Raises :class:`InstallNotFound`, :class:`InstallRevoked`,
        :class:`~connector.installs.errors.InstallUnreadable`, and the token endpoint's
        transient errors and :class:`~connector.hubspot.errors.OAuthClientRejected`.
        """
        slot = self._slot(platform_account)
        seen = slot.attempts  # before looking: an attempt that ends after this one is ours
        install = self._usable(platform_account)
        if self._fresh(install):
            return _token(install)
        with slot.lock:
            install = self._usable(platform_account)
            if self._fresh(install):
                return _token(install)  # refreshed by the thread we waited for
            if slot.attempts != seen and slot.failure is not None:
                raise slot.failure  # the attempt we waited for failed: its failure is ours
            try:
                token = self._refresh(install)
            except Exception as exc:
                slot.failure = exc
                raise
            else:
                slot.failure = None
                return token
            finally:
                slot.attempts += 1

    def invalidate(self, platform_account: str, token: str) -> bool:
        """HubSpot answered 401 ``EXPIRED_AUTHENTICATION`` to ``token``: the next
        :meth:`bearer` refreshes, if ``token`` is still the account's current one (True). A
        token already replaced, or a private-app token, changes nothing (False)."""
        install = self.install(platform_account)
        if install is None or install.kind == PRIVATE_APP or install.access_token != token:
            return False
        self._refused[platform_account] = token
        log.info("install_token_refused account=%s hub_id=%s", platform_account, install.hub_id)
        return True

    # ----------------------------------------------------------------- inside

    def _slot(self, platform_account: str) -> _Slot:
        slot = self._slots.get(platform_account)
        if slot is None:
            with self._slots_lock:
                slot = self._slots.setdefault(platform_account, _Slot())
        return slot

    def _usable(self, platform_account: str) -> Install:
        install = self.install(platform_account)
        if install is None:
            raise InstallNotFound(platform_account)
        if not install.is_active:
            raise InstallRevoked(platform_account, install.revoked_reason)
        return install

    def _fresh(self, install: Install) -> bool:
        if install.kind == PRIVATE_APP:
            return True
        return (install.access_fresh(self._clock(), self._margin)
                and self._refused.get(install.platform_account) != install.access_token)

    def _refresh(self, install: Install) -> str:
        account = install.platform_account
        if self._oauth is None or install.refresh_token is None:
            raise InstallError(f"platform account {account!r} needs a token refresh, but no "
                               f"OAuth client is configured (CONNECTOR_HUBSPOT__MODE=app)",
                               account=account)
        try:
            grant = self._oauth.refresh(install.refresh_token)
        except RefreshTokenRevoked as exc:
            reason = f"refresh-token-revoked: {exc.category or exc.error or exc.status}"
            revoked = install.revoked(reason, now=self._clock())
            self._remember(revoked)
            log.warning("install_revoked account=%s hub_id=%s reason=%s correlation_id=%s",
                        account, install.hub_id, reason, exc.correlation_id)
            self._save(revoked)
            raise InstallRevoked(account, reason) from exc
        if grant.hub_id is not None and grant.hub_id != install.hub_id:
            log.warning("install_hub_changed account=%s hub_id=%s granted_hub_id=%s",
                        account, install.hub_id, grant.hub_id)
        updated = install.refreshed(grant, now=self._clock())
        self._remember(updated)
        self._refused.pop(account, None)
        log.info("install_token_refreshed account=%s hub_id=%s expires_in=%s",
                 account, install.hub_id, grant.expires_in)
        self._save(updated)
        return _token(updated)

    def _remember(self, install: Install) -> None:
        with self._local_lock:
            self._local[install.platform_account] = install

    def _save(self, install: Install) -> None:
        if self._store is None:
            return
        try:
            self._store.put(install)
        except InstallError as exc:  # kept here all the same; the next refresh writes again
            log.warning("install_write_failed account=%s status=%s error=%s",
                        install.platform_account, install.status, exc)


def _token(install: Install) -> str:
    if install.access_token is None:  # an active oauth install after a refresh always has one
        raise InstallError(f"platform account {install.platform_account!r} has no access token",
                           account=install.platform_account)
    return install.access_token
