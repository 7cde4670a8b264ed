"""OAuth state: installs, authorization codes, refresh and access tokens (reference: OAuth §1-§4).

Pure state over an injected clock (epoch seconds); the HTTP side is `routes/authorize.py` and
`routes/oauth.py`. An install is one (app, account) pair; the user approving the authorize page
creates it, the code exchange hands out its refresh token (one live refresh token per install,
stable across refreshes and re-authorizations) and a fresh access token.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from connector.sandbox import oauth_errors as err
from connector.sandbox.directory import OAUTH_SCOPE, AccountConfig, OAuthAppConfig

InstallKey = tuple[int, int]  # (app_id, hub_id)

INSTALLED = "installed"
UNINSTALLED = "uninstalled"


@dataclass(frozen=True)
class Grant:
    """What a token stands for: an app acting in an account for a user, with scopes."""

    app_id: int
    hub_id: int
    scopes: tuple[str, ...]
    user: str
    user_id: int

    @property
    def key(self) -> InstallKey:
        """(app_id, hub_id)."""
        return (self.app_id, self.hub_id)


@dataclass(frozen=True)
class AuthCode:
    """A single-use authorization code."""

    grant: Grant
    client_id: str
    redirect_uri: str
    expires_at: float


@dataclass
class AccessToken:
    """A bearer token for the APIs, valid until `expires_at`."""

    token: str
    grant: Grant
    expires_at: float


@dataclass
class Install:
    """One app installed in one account."""

    grant: Grant
    installed_at: float
    status: str = INSTALLED
    uninstalled_at: float | None = None
    refresh_token: str | None = None

    def as_admin(self) -> dict[str, object]:
        """The admin view (no tokens)."""
        return {
            "hubId": self.grant.hub_id,
            "appId": self.grant.app_id,
            "scopes": list(self.grant.scopes),
            "user": self.grant.user,
            "userId": self.grant.user_id,
            "status": self.status,
            "installedAt": self.installed_at,
            "uninstalledAt": self.uninstalled_at,
            "hasRefreshToken": self.refresh_token is not None,
        }


@dataclass(frozen=True)
class TokenSet:
    """The answer of a successful token request."""

    refresh_token: str
    access: AccessToken
    expires_in: int

    def body(self) -> dict[str, object]:
        """HubSpot's snake_case token response."""
        return {
            "token_type": "bearer",
            "refresh_token": self.refresh_token,
            "access_token": self.access.token,
            "expires_in": self.expires_in,
            "hub_id": self.access.grant.hub_id,
            "user_id": self.access.grant.user_id,
            "scopes": list(self.access.grant.scopes),
        }


def granted_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """`oauth` first, then the rest sorted."""
    rest = sorted(set(scopes) - {OAUTH_SCOPE})
    return (OAUTH_SCOPE, *rest)


class OAuthState:
    """Every install, code and token of the sandbox's OAuth apps."""

    def __init__(
        self,
        *,
        apps: Iterable[OAuthAppConfig],
        accounts: Mapping[int, AccountConfig],
        clock: Callable[[], float],
        code_ttl: float,
        access_ttl: float,
        access_survives_uninstall: bool,
        region: str = "na1",
    ) -> None:
        self.apps = {a.client_id: a for a in apps}
        self.accounts = accounts
        self._clock = clock
        self.code_ttl = code_ttl
        self.access_ttl = access_ttl
        self.access_survives_uninstall = access_survives_uninstall
        self.region = region
        self.installs: dict[InstallKey, Install] = {}
        self.codes: dict[str, AuthCode] = {}
        self.refresh_tokens: dict[str, InstallKey] = {}
        self.access_tokens: dict[str, AccessToken] = {}

    # ---- authorize -------------------------------------------------------------------------
    def authorize(
        self, app: OAuthAppConfig, hub_id: int, redirect_uri: str, scopes: Iterable[str]
    ) -> str:
        """The user approved: install (or update) the app in the account; a fresh code."""
        account = self.accounts[hub_id]
        grant = Grant(app.app_id, hub_id, granted_scopes(scopes), account.user, account.user_id)
        now = self._clock()
        install = self.installs.get(grant.key)
        if install is None or install.status != INSTALLED:
            self.installs[grant.key] = Install(grant, installed_at=now)
        else:
            install.grant = grant
        code = str(uuid.uuid4())
        self.codes[code] = AuthCode(grant, app.client_id, redirect_uri, now + self.code_ttl)
        return code

    # ---- token endpoint --------------------------------------------------------------------
    def client(self, client_id: str | None, client_secret: str | None) -> OAuthAppConfig:
        """The app these client credentials name (OAuthError otherwise)."""
        if not client_id:
            raise err.missing_parameter("client_id")
        app = self.apps.get(client_id)
        if app is None:
            raise err.bad_client_id()
        if not client_secret or not secrets.compare_digest(client_secret, app.client_secret):
            raise err.bad_client_secret()
        return app

    def exchange_code(self, app: OAuthAppConfig, code: str, redirect_uri: str) -> TokenSet:
        """grant_type=authorization_code: consume the code, answer the install's tokens."""
        record = self.codes.get(code)
        if record is None or record.client_id != app.client_id:
            raise err.bad_auth_code()
        if self._clock() >= record.expires_at:
            del self.codes[code]
            raise err.expired_auth_code()
        if redirect_uri != record.redirect_uri:
            raise err.bad_redirect_uri()
        del self.codes[code]
        install = self.installs.get(record.grant.key)
        if install is None or install.status != INSTALLED:
            raise err.bad_auth_code()  # uninstalled since the user approved
        if install.refresh_token is None:
            install.refresh_token = f"{self.region}-{uuid.uuid4()}"
            self.refresh_tokens[install.refresh_token] = install.grant.key
        return self._tokens(install.refresh_token, install.grant)

    def refresh(self, app: OAuthAppConfig, refresh_token: str) -> TokenSet:
        """grant_type=refresh_token: the same refresh token and a new access token."""
        install = self.install_of_refresh_token(refresh_token)
        if install is None or install.grant.app_id != app.app_id:
            raise err.bad_refresh_token()
        return self._tokens(refresh_token, install.grant)

    def _tokens(self, refresh_token: str, grant: Grant) -> TokenSet:
        access = AccessToken(
            token="C" + secrets.token_urlsafe(226),  # >= 300 characters, as HubSpot warns
            grant=grant,
            expires_at=self._clock() + self.access_ttl,
        )
        self.access_tokens[access.token] = access
        return TokenSet(refresh_token, access, int(self.access_ttl))

    # ---- lookups ---------------------------------------------------------------------------
    def access_token(self, token: str) -> AccessToken | None:
        """The access token record (expired ones included), None when unknown or revoked."""
        return self.access_tokens.get(token)

    def is_expired(self, access: AccessToken) -> bool:
        """Whether the token's life is over."""
        return self._clock() >= access.expires_at

    def seconds_left(self, access: AccessToken) -> int:
        """Whole seconds until the token expires (0 once expired)."""
        return max(0, int(access.expires_at - self._clock()))

    def install_of_refresh_token(self, token: str) -> Install | None:
        """The live install a refresh token belongs to."""
        key = self.refresh_tokens.get(token)
        install = self.installs.get(key) if key is not None else None
        if install is None or install.status != INSTALLED or install.refresh_token != token:
            return None
        return install

    def app_by_id(self, app_id: int) -> OAuthAppConfig | None:
        """An OAuth app by id."""
        return next((a for a in self.apps.values() if a.app_id == app_id), None)

    # ---- revocation ------------------------------------------------------------------------
    def delete_refresh_token(self, token: str) -> bool:
        """Kill one refresh token (access tokens and the install stay); False when unknown."""
        install = self.install_of_refresh_token(token)
        if install is None:
            return False
        self.refresh_tokens.pop(token, None)
        install.refresh_token = None
        return True

    def revoke(self, token: str) -> None:
        """RFC 7009 revoke: a refresh token dies as with delete; an access token dies alone;
        anything else is ignored."""
        if not self.delete_refresh_token(token):
            self.access_tokens.pop(token, None)

    def uninstall(self, app_id: int, hub_id: int) -> Install | None:
        """Uninstall: refresh tokens and pending codes die; access tokens too unless configured
        to survive. None when the app is not installed there."""
        install = self.installs.get((app_id, hub_id))
        if install is None or install.status != INSTALLED:
            return None
        install.status = UNINSTALLED
        install.uninstalled_at = self._clock()
        if install.refresh_token is not None:
            self.refresh_tokens.pop(install.refresh_token, None)
            install.refresh_token = None
        for code in [c for c, r in self.codes.items() if r.grant.key == (app_id, hub_id)]:
            del self.codes[code]
        if not self.access_survives_uninstall:
            key = (app_id, hub_id)
            for token in [t for t, a in self.access_tokens.items() if a.grant.key == key]:
                del self.access_tokens[token]
        return install

    def expire_access_tokens(self) -> int:
        """Make every live access token expire now; how many there were."""
        now = self._clock()
        live = [a for a in self.access_tokens.values() if a.expires_at > now]
        for access in live:
            access.expires_at = now
        return len(live)

    def reset(self) -> None:
        """Forget every install, code and token."""
        self.installs.clear()
        self.codes.clear()
        self.refresh_tokens.clear()
        self.access_tokens.clear()
