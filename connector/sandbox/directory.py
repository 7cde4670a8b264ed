"""Who the sandbox knows: HubSpot accounts (`AccountConfig`), private apps (`AppConfig`, one
static token each, addressing the default account) and public apps (`OAuthAppConfig`, installed
into accounts through OAuth). All frozen; secrets are masked in repr.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

READ_SCOPE = "crm.objects.marketing_events.read"
WRITE_SCOPE = "crm.objects.marketing_events.write"
CONTACTS_READ_SCOPE = "crm.objects.contacts.read"
CONTACTS_WRITE_SCOPE = "crm.objects.contacts.write"
DEFAULT_SCOPES = frozenset({READ_SCOPE, WRITE_SCOPE, CONTACTS_READ_SCOPE, CONTACTS_WRITE_SCOPE})
#: Granted to every OAuth install (HubSpot lists it first in a token's `scopes`).
OAUTH_SCOPE = "oauth"


@dataclass(frozen=True)
class AccountConfig:
    """One HubSpot account (portal): its hub id, domain and installing user.

    unavailable_scopes: scopes the account lacks the product for; optional scopes among them are
      dropped at install, required ones make the install fail (HubSpot's error page).
    """

    hub_id: int
    domain: str = ""
    user: str = ""
    user_id: int = 0
    unavailable_scopes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.hub_id < 1:
            raise ValueError("AccountConfig.hub_id must be a positive integer")
        if not self.domain:
            object.__setattr__(self, "domain", f"sandbox-{self.hub_id}.example.com")
        if not self.user:
            object.__setattr__(self, "user", f"admin@sandbox-{self.hub_id}.example.com")
        if not self.user_id:
            object.__setattr__(self, "user_id", 9_000_000 + self.hub_id % 1_000_000)
        object.__setattr__(self, "unavailable_scopes", frozenset(self.unavailable_scopes))


@dataclass(frozen=True)
class AppConfig:
    """One private app installed in the default account: its static token and secrets."""

    app_id: int
    token: str
    client_secret: str
    scopes: frozenset[str] = DEFAULT_SCOPES
    name: str = "Sandbox App"
    developer_api_key: str | None = None

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("AppConfig.token must not be empty")
        object.__setattr__(self, "scopes", frozenset(self.scopes))

    def __repr__(self) -> str:  # secrets never printed
        return (
            f"AppConfig(app_id={self.app_id}, name={self.name!r}, token='***', "
            f"client_secret='***', scopes={sorted(self.scopes)})"
        )

    def has_scope(self, scope: str) -> bool:
        """Whether the app's token was granted `scope`."""
        return scope in self.scopes


def check_redirect_uri(uri: str) -> None:
    """HubSpot's rule for registered redirect URLs: https, or http on `localhost`; no IP hosts."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"redirect URI {uri!r} must be an absolute http(s) URL")
    if host.replace(".", "").isdigit() or ":" in host:
        raise ValueError(f"redirect URI {uri!r} must not use an IP address (HubSpot's rule)")
    if parts.scheme == "http" and host != "localhost":
        raise ValueError(f"redirect URI {uri!r} must use https (http only for localhost)")


@dataclass(frozen=True)
class OAuthAppConfig:
    """A public app: installed into accounts through OAuth (reference: OAuth §1-§3).

    scopes: the app's required scopes (the authorize URL's `scope` must hold them all);
    optional_scopes: may be asked for in `optional_scope` (dropped when the account lacks them).
    """

    app_id: int
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    scopes: frozenset[str] = DEFAULT_SCOPES
    optional_scopes: frozenset[str] = frozenset()
    name: str = "Sandbox Public App"
    developer_api_key: str | None = None

    def __post_init__(self) -> None:
        if not self.client_id or not self.client_secret:
            raise ValueError("OAuthAppConfig.client_id and client_secret must not be empty")
        uris = (self.redirect_uris,) if isinstance(self.redirect_uris, str) else self.redirect_uris
        object.__setattr__(self, "redirect_uris", tuple(uris))
        if not self.redirect_uris:
            raise ValueError("OAuthAppConfig.redirect_uris must name at least one URL")
        for uri in self.redirect_uris:
            check_redirect_uri(uri)
        object.__setattr__(self, "scopes", frozenset(self.scopes))
        object.__setattr__(self, "optional_scopes", frozenset(self.optional_scopes))
        if self.scopes & self.optional_scopes:
            raise ValueError("OAuthAppConfig: a scope cannot be both required and optional")

    def __repr__(self) -> str:  # secrets never printed
        return (
            f"OAuthAppConfig(app_id={self.app_id}, name={self.name!r}, "
            f"client_id={self.client_id!r}, client_secret='***', "
            f"redirect_uris={list(self.redirect_uris)}, scopes={sorted(self.scopes)}, "
            f"optional_scopes={sorted(self.optional_scopes)})"
        )


#: Either kind of app.
AnyApp = AppConfig | OAuthAppConfig
