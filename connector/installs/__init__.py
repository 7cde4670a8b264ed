"""The install registry of app mode: which HubSpot account each platform account writes to.

In app mode (``CONNECTOR_HUBSPOT__MODE=app``) the connector is a HubSpot public app that many
customers install; each platform account (HubSpot's ``externalAccountId``) maps to an *install*.

model.py     ``Install``: kind (oauth | private-app), hub id, scopes, status, tokens
secrets.py   ``SecretCipher``: Fernet under one or more keys; key rotation, step by step
topic.py     the compacted ``connector.installs`` topic's records (``InstallCodec``) and config
registry.py  ``InstallTable`` (every instance reads the topic whole), its reader, the writer
tokens.py    ``AccessTokens``: the current bearer token per account, refreshed once when due
routing.py   ``AccountRoutes``: a platform account's route (token, budget key, limit) or why
             it has none (the dead-letter reason)
links.py     ``LinkSigner``: install links the webinar platform signs (HMAC-SHA256), checked
             before an install starts
state.py     ``StateSigner``: the install flow's signed, expiring OAuth ``state``
admin.py     what ``connector accounts`` does
errors.py    the exception tree

Private-app mode (the default) needs none of it but :class:`AccountRoutes`, which then routes
every account to the one configured token, as before.
"""

from connector.installs.admin import InstallAdmin, open_admin
from connector.installs.errors import (
    InstallError,
    InstallExists,
    InstallNotFound,
    InstallRevoked,
    InstallUnreadable,
    InstallWriteFailed,
    StateRejected,
)
from connector.installs.links import InstallLink, LinkRejected, LinkSigner
from connector.installs.model import Install
from connector.installs.registry import (
    InstallTable,
    InstallTableReader,
    InstallWriter,
    Registry,
    open_registry,
)
from connector.installs.routing import AccountRoutes, HubBearer, NoRoute, Route
from connector.installs.secrets import SecretCipher
from connector.installs.state import StateSigner
from connector.installs.tokens import AccessTokens, oauth_client_from

__all__ = [
    "AccessTokens",
    "AccountRoutes",
    "HubBearer",
    "Install",
    "InstallAdmin",
    "InstallError",
    "InstallExists",
    "InstallLink",
    "InstallNotFound",
    "InstallRevoked",
    "InstallTable",
    "InstallTableReader",
    "InstallUnreadable",
    "InstallWriteFailed",
    "InstallWriter",
    "LinkRejected",
    "LinkSigner",
    "NoRoute",
    "Registry",
    "Route",
    "SecretCipher",
    "StateRejected",
    "StateSigner",
    "oauth_client_from",
    "open_admin",
    "open_registry",
]
