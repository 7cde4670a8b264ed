"""AccountRoutes in both modes, with each reason an account has no route."""

from __future__ import annotations

import pytest

from connector.config import load_settings
from connector.errors import ConfigError
from connector.hubspot.oauth import TokenGrant
from connector.installs.errors import InstallNotFound, InstallRevoked
from connector.installs.model import Install
from connector.installs.registry import InstallTable
from connector.installs.routing import AccountRoutes, HubBearer, NoRoute, Route, private_key
from connector.installs.tokens import AccessTokens
from tests.unit.installs_helpers import NOW, FakeClock, FakeRefresher, MemoryWriter, oauth_install

STATIC = "pat-na1-11111111-2222-3333-4444-555555555555"
READ_ONLY = ("oauth", "crm.objects.marketing_events.read")


def app_routes(*installs: Install) -> tuple[AccountRoutes, InstallTable, FakeRefresher]:
    clock = FakeClock()
    table = InstallTable()
    for install in installs:
        table.put(install)
    refresher = FakeRefresher(clock)
    tokens = AccessTokens(table, refresher, MemoryWriter(table), clock=clock)
    routes = AccountRoutes(mode="app", private_window_limit=190, window_seconds=10,
                           tokens=tokens)
    return routes, table, refresher


def test_private_app_mode_routes_every_account_to_the_one_token() -> None:
    settings = load_settings({"CONNECTOR_HUBSPOT__ACCESS_TOKEN": STATIC,
                              "CONNECTOR_SINK__WINDOW_LIMIT": "190"})
    routes = AccountRoutes.from_settings(settings)
    first, second = routes.resolve("acct-1"), routes.resolve("anything at all")

    assert isinstance(first, Route) and isinstance(second, Route)
    assert (first.account_key, first.kind, first.window_limit, first.window_seconds) == (
        "default", "private-app", 190, 10)
    assert second.account_key == "default" and second.platform_account == "anything at all"
    assert first.bearer() == second.bearer() == STATIC
    assert first.expired(STATIC) is False  # a static token is not refreshed
    assert STATIC not in repr(first)


def test_private_app_mode_without_a_token_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="CONNECTOR_HUBSPOT__ACCESS_TOKEN"):
        AccountRoutes.from_settings(load_settings({}))
    with pytest.raises(ValueError, match="AccessTokens"):
        AccountRoutes(mode="app", private_window_limit=100)


def test_an_oauth_install_routes_by_hub_and_shares_the_hubs_budget() -> None:
    routes, _, refresher = app_routes(
        oauth_install("acct-1", hub_id=111, access="t-1", expires_at=NOW + 1800),
        oauth_install("acct-2", hub_id=111, access="t-2", expires_at=NOW + 1800),
        oauth_install("acct-3", hub_id=222, access="t-3", expires_at=NOW + 1800))
    one, two, three = (routes.resolve(a) for a in ("acct-1", "acct-2", "acct-3"))

    assert isinstance(one, Route) and isinstance(two, Route) and isinstance(three, Route)
    assert (one.account_key, two.account_key, three.account_key) == ("111", "111", "222")
    assert (one.kind, one.hub_id, one.window_limit, one.window_seconds) == ("oauth", 111, 110, 10)
    assert (one.bearer(), two.bearer()) == ("t-1", "t-2")  # one hub, each its own token
    assert one.expired("t-1") is True  # a 401 EXPIRED_AUTHENTICATION: the next bearer refreshes
    assert one.bearer() != "t-1" and refresher.calls == ["na1-refresh-acct-1"]


def test_a_private_app_link_routes_by_a_hash_of_its_token_under_the_sink_limit() -> None:
    routes, _, _ = app_routes(Install.private_app("acct-p", STATIC, hub_id=333, now=NOW),
                              Install.private_app("acct-q", STATIC, now=NOW))
    route, same_token = routes.resolve("acct-p"), routes.resolve("acct-q")

    assert isinstance(route, Route) and isinstance(same_token, Route)
    assert route.account_key == private_key(STATIC) == same_token.account_key
    assert route.account_key.startswith("private:") and len(route.account_key) == 20
    assert STATIC not in route.account_key
    assert (route.kind, route.hub_id, route.window_limit) == ("private-app", 333, 190)
    assert route.bearer() == STATIC


@pytest.mark.parametrize(("setup", "reason", "detail"), [
    ("none", "no-hubspot-install", "has no HubSpot install"),
    ("revoked", "hubspot-install-revoked", "refresh-token-revoked: BAD_REFRESH_TOKEN"),
    ("read-only", "hubspot-missing-scopes", "crm.objects.marketing_events.write"),
    ("unreadable", "hubspot-install-unreadable", "key gone"),
])
def test_each_reason_an_account_has_no_route(setup: str, reason: str, detail: str) -> None:
    routes, table, _ = app_routes(oauth_install("other"))
    if setup == "revoked":
        table.put(oauth_install("acct").revoked("refresh-token-revoked: BAD_REFRESH_TOKEN",
                                                now=NOW))
    elif setup == "read-only":
        table.put(oauth_install("acct", scopes=READ_ONLY))
    elif setup == "unreadable":
        table.mark_unreadable("acct", "key gone")

    result = routes.resolve("acct")

    assert isinstance(result, NoRoute)
    assert (result.platform_account, result.reason) == ("acct", reason)
    assert detail in result.detail
    assert isinstance(routes.resolve("other"), Route)  # the other account keeps its route


def test_a_revocation_during_a_refresh_is_seen_by_the_next_resolve() -> None:
    from connector.hubspot.errors import RefreshTokenRevoked

    clock = FakeClock()
    table = InstallTable()
    table.put(oauth_install("acct", expires_at=NOW))

    class Revoking(FakeRefresher):
        def refresh(self, refresh_token: str) -> TokenGrant:
            raise RefreshTokenRevoked(status=400, message="x", category="BAD_REFRESH_TOKEN")

    tokens = AccessTokens(table, Revoking(clock), None, clock=clock)
    routes = AccountRoutes(mode="app", private_window_limit=100, tokens=tokens)
    route = routes.resolve("acct")
    assert isinstance(route, Route)
    with pytest.raises(InstallRevoked):
        route.bearer()
    after = routes.resolve("acct")
    assert isinstance(after, NoRoute) and after.reason == "hubspot-install-revoked"


def test_private_app_links_are_not_checked_for_scopes() -> None:
    link = Install.private_app("acct-p", STATIC, now=NOW)
    assert link.missing_scopes(["crm.objects.marketing_events.write"]) == ()
    routes, _, _ = app_routes(link)
    assert isinstance(routes.resolve("acct-p"), Route)


def test_a_hub_bearer_goes_on_with_another_accounts_token_when_one_is_revoked() -> None:
    routes, table, _ = app_routes(
        oauth_install("acct-1", hub_id=111, access="access-one", expires_at=NOW + 1800),
        oauth_install("acct-2", hub_id=111, access="access-two", expires_at=NOW + 1800))
    one = routes.resolve("acct-1")
    assert isinstance(one, Route)
    bearer = HubBearer(one.credentials, "acct-1", {"acct-1", "acct-2"})
    assert bearer.bearer() == "access-one"

    revoked = table.get("acct-1")
    assert revoked is not None
    table.put(revoked.revoked("revoked-by-operator", now=NOW + 1))
    assert bearer.bearer() == "access-two"  # acct-2's install still writes to hub 111
    assert bearer.expired("access-two") is True  # the current account's token is the one refreshed
    assert "access-two" not in repr(bearer)

    table.remove("acct-2")  # unlinked too: nothing left to write with
    with pytest.raises(InstallNotFound):  # the current account's failure (acct-2's)
        bearer.bearer()
