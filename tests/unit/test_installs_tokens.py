"""AccessTokens with a fake clock and a fake token endpoint: cached, refreshed when due, once per
account under concurrency, invalidated after a 401, revoked after invalid_grant."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest

from connector.hubspot.errors import OAuthClientRejected, RefreshTokenRevoked, ServerError
from connector.hubspot.oauth import TokenGrant
from connector.installs.errors import InstallNotFound, InstallRevoked, InstallUnreadable
from connector.installs.model import Install
from connector.installs.registry import InstallTable
from connector.installs.tokens import AccessTokens
from tests.unit.installs_helpers import (
    NOW,
    FakeClock,
    FakeRefresher,
    MemoryWriter,
    grant,
    oauth_install,
)

#: Longest a test waits for another thread: a guard against a deadlock, never a timing.
GUARD = 10.0


def setup(*installs: Install, answer: Callable[[str], TokenGrant] | None = None,
          table: InstallTable | None = None
          ) -> tuple[AccessTokens, FakeRefresher, MemoryWriter, FakeClock]:
    clock = FakeClock()
    table = table if table is not None else InstallTable()
    for install in installs:
        table.put(install)
    writer = MemoryWriter(table)
    refresher = FakeRefresher(clock, answer)
    return AccessTokens(table, refresher, writer, margin_seconds=300, clock=clock), refresher, \
        writer, clock


def test_a_token_good_beyond_the_margin_is_used_as_it_is() -> None:
    tokens, refresher, writer, clock = setup(oauth_install("a", access="t0",
                                                           expires_at=NOW + 1800))
    assert tokens.bearer("a") == "t0"
    clock.advance(1800 - 301)  # 301 s left: still more than the margin
    assert tokens.bearer("a") == "t0"
    assert refresher.calls == [] and writer.written == []


def test_a_token_within_the_margin_is_refreshed_once_and_written_back() -> None:
    tokens, refresher, writer, clock = setup(oauth_install("a", access="t0",
                                                           expires_at=NOW + 1800))
    clock.advance(1800 - 300)  # 300 s left: due

    token = tokens.bearer("a")

    assert token == "access-na1-refresh-a-1"
    assert refresher.calls == ["na1-refresh-a"]
    (written,) = writer.written
    assert (written.access_token, written.access_expires_at, written.updated_at) == (
        token, clock() + 1800, clock())
    assert written.refresh_token == "na1-refresh-a" and written.status == "active"
    assert tokens.bearer("a") == token and len(refresher.calls) == 1  # cached now
    assert tokens.install("a") == written


def test_the_refreshed_scopes_and_refresh_token_are_kept() -> None:
    def answer(refresh_token: str) -> TokenGrant:
        return grant("t1", "na1-rotated", scopes=("oauth",), obtained_at=NOW)

    tokens, _, writer, _ = setup(oauth_install("a", expires_at=NOW), answer=answer)
    assert tokens.bearer("a") == "t1"
    (written,) = writer.written
    assert (written.refresh_token, written.scopes) == ("na1-rotated", ("oauth",))


def test_one_refresh_for_16_threads_while_another_account_is_never_blocked() -> None:
    entered, release = threading.Event(), threading.Event()
    arrived: set[int] = set()
    all_arrived = threading.Event()

    class CountingTable(InstallTable):
        def get(self, platform_account: str) -> Install | None:
            if platform_account == "a" and threading.current_thread().name.startswith("a-"):
                arrived.add(threading.get_ident())
                if len(arrived) == 16:
                    all_arrived.set()
            return super().get(platform_account)

    def answer(refresh_token: str) -> TokenGrant:
        if refresh_token == "na1-refresh-a":
            entered.set()
            if not release.wait(GUARD):
                raise AssertionError("never released")
            return grant("new-a", refresh_token)
        return grant("new-b", refresh_token)

    tokens, refresher, _, _ = setup(oauth_install("a", access="old-a", expires_at=NOW + 10),
                                    oauth_install("b", access="old-b", expires_at=NOW + 10),
                                    answer=answer, table=CountingTable())
    results: list[str | BaseException] = []
    lock = threading.Lock()

    def ask(account: str, done: threading.Event | None = None) -> None:
        try:
            value: str | BaseException = tokens.bearer(account)
        except BaseException as exc:
            value = exc
        with lock:
            results.append(value)
        if done is not None:
            done.set()

    threads = [threading.Thread(target=ask, args=("a",), name=f"a-{n}") for n in range(16)]
    for thread in threads:
        thread.start()
    assert entered.wait(GUARD)  # a's refresh is under way, and held there

    b_done = threading.Event()
    threading.Thread(target=ask, args=("b", b_done), name="b").start()
    assert b_done.wait(GUARD), "account b waited for account a's refresh"
    assert results == ["new-b"]

    assert all_arrived.wait(GUARD)  # every thread of a asked while a's refresh was held
    release.set()
    for thread in threads:
        thread.join(GUARD)
    assert results[1:] == ["new-a"] * 16
    assert sorted(refresher.calls) == ["na1-refresh-a", "na1-refresh-b"]


def test_threads_that_waited_for_a_failed_refresh_share_its_failure() -> None:
    entered, release = threading.Event(), threading.Event()
    arrived: set[int] = set()
    all_arrived = threading.Event()

    class CountingTable(InstallTable):
        def get(self, platform_account: str) -> Install | None:
            arrived.add(threading.get_ident())
            if len(arrived) == 4:
                all_arrived.set()
            return super().get(platform_account)

    def answer(refresh_token: str) -> TokenGrant:
        entered.set()
        release.wait(GUARD)
        raise ServerError(status=503, message="Service Unavailable")

    tokens, refresher, _, _ = setup(oauth_install("a", expires_at=NOW), answer=answer,
                                    table=CountingTable())
    failures: list[BaseException] = []

    def ask() -> None:
        try:
            tokens.bearer("a")
        except ServerError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    assert entered.wait(GUARD) and all_arrived.wait(GUARD)
    release.set()
    for thread in threads:
        thread.join(GUARD)
    assert len(failures) == 4 and refresher.calls == ["na1-refresh-a"]
    with pytest.raises(ServerError):  # a later request tries again
        tokens.bearer("a")
    assert len(refresher.calls) == 2


def test_invalidate_forces_a_refresh_only_for_the_current_token() -> None:
    tokens, refresher, _, _ = setup(oauth_install("a", access="t0", expires_at=NOW + 1800))
    assert tokens.invalidate("a", "some-older-token") is False
    assert tokens.bearer("a") == "t0" and refresher.calls == []

    assert tokens.invalidate("a", "t0") is True  # HubSpot said 401 EXPIRED_AUTHENTICATION
    fresh = tokens.bearer("a")
    assert fresh != "t0" and refresher.calls == ["na1-refresh-a"]
    assert tokens.invalidate("a", "t0") is False  # already replaced: nothing to do
    assert tokens.bearer("a") == fresh and len(refresher.calls) == 1
    assert tokens.invalidate("nobody", "t0") is False


def test_a_revoked_refresh_token_marks_the_install_revoked_and_raises(
        caplog: pytest.LogCaptureFixture) -> None:
    def answer(refresh_token: str) -> TokenGrant:
        raise RefreshTokenRevoked(status=400, message="missing or invalid refresh token",
                                  category="BAD_REFRESH_TOKEN", error="invalid_grant")

    tokens, refresher, writer, clock = setup(oauth_install("a", expires_at=NOW), answer=answer)
    caplog.set_level(logging.INFO)

    with pytest.raises(InstallRevoked) as info:
        tokens.bearer("a")

    assert info.value.account == "a"
    assert info.value.reason == "refresh-token-revoked: BAD_REFRESH_TOKEN"
    (written,) = writer.written
    assert (written.status, written.revoked_reason, written.updated_at) == (
        "revoked", "refresh-token-revoked: BAD_REFRESH_TOKEN", clock())
    with pytest.raises(InstallRevoked):  # and it stays revoked, without asking HubSpot again
        tokens.bearer("a")
    assert refresher.calls == ["na1-refresh-a"]
    assert "install_revoked account=a" in caplog.text
    assert "na1-refresh-a" not in caplog.text


def test_a_revocation_is_known_here_even_when_the_registry_write_fails() -> None:
    def answer(refresh_token: str) -> TokenGrant:
        raise RefreshTokenRevoked(status=400, message="gone", category="BAD_REFRESH_TOKEN")

    tokens, _, writer, _ = setup(oauth_install("a", expires_at=NOW), answer=answer)
    writer.fail = True
    with pytest.raises(InstallRevoked):
        tokens.bearer("a")
    revoked = tokens.install("a")
    assert revoked is not None and revoked.status == "revoked"


def test_a_refreshed_token_is_used_even_when_the_registry_write_fails(
        caplog: pytest.LogCaptureFixture) -> None:
    tokens, refresher, writer, _ = setup(oauth_install("a", access="t0", expires_at=NOW))
    writer.fail = True
    caplog.set_level(logging.WARNING)
    token = tokens.bearer("a")
    assert token != "t0" and tokens.bearer("a") == token and len(refresher.calls) == 1
    assert "install_write_failed account=a" in caplog.text


def test_a_newer_install_in_the_table_wins_over_this_instances_own() -> None:
    table = InstallTable()
    tokens, refresher, writer, clock = setup(oauth_install("a", access="t0", expires_at=NOW),
                                             table=table)
    writer.fail = True  # this instance's refresh stays local ...
    mine = tokens.bearer("a")
    clock.advance(60)  # ... until another instance writes a newer one
    table.put(oauth_install("a", access="theirs", expires_at=clock() + 1800,
                            updated_at=clock()))
    assert mine != "theirs" and tokens.bearer("a") == "theirs"
    assert len(refresher.calls) == 1
    table.remove("a")  # unlinked: gone, whatever this instance held
    with pytest.raises(InstallNotFound):
        tokens.bearer("a")


def test_a_private_app_link_gives_its_static_token() -> None:
    link = Install.private_app("p", "pat-na1-static-token", now=NOW)
    tokens, refresher, _, clock = setup(link)
    clock.advance(10 * 86400)
    assert tokens.bearer("p") == "pat-na1-static-token"
    assert tokens.invalidate("p", "pat-na1-static-token") is False
    assert tokens.bearer("p") == "pat-na1-static-token" and refresher.calls == []


def test_no_install_unreadable_and_the_apps_own_credentials_refused() -> None:
    def answer(refresh_token: str) -> TokenGrant:
        raise OAuthClientRejected(status=400, message="bad secret", error="invalid_client")

    table = InstallTable()
    tokens, _, writer, _ = setup(oauth_install("a", expires_at=NOW), answer=answer, table=table)
    table.mark_unreadable("u", "under an unknown key")
    with pytest.raises(InstallNotFound):
        tokens.bearer("nobody")
    with pytest.raises(InstallUnreadable, match="'u'"):
        tokens.bearer("u")
    with pytest.raises(OAuthClientRejected):  # an operator's problem: the install stays active
        tokens.bearer("a")
    assert writer.written == []
    install = tokens.install("a")
    assert install is not None and install.status == "active"


def test_tokens_and_the_oauth_client_come_from_settings() -> None:
    from connector.config import load_settings
    from connector.errors import ConfigError
    from connector.installs.tokens import oauth_client_from

    with pytest.raises(ConfigError, match="CONNECTOR_HUBSPOT__CLIENT_ID"):
        oauth_client_from(load_settings({}))
    settings = load_settings({
        "CONNECTOR_HUBSPOT__CLIENT_ID": "cid", "CONNECTOR_HUBSPOT__CLIENT_SECRET": "csecret-123",
        "CONNECTOR_HUBSPOT__REDIRECT_URL": "https://c.example.com/hubspot/oauth/callback",
        "CONNECTOR_HUBSPOT__AUTHORIZE_URL": "http://127.0.0.1:9/oauth/authorize",
        "CONNECTOR_HUBSPOT__SCOPES": "oauth crm.objects.marketing_events.write",
        "CONNECTOR_INSTALLS__REFRESH_MARGIN_SECONDS": "60"})
    client = oauth_client_from(settings)
    assert client.authorize_url("s") == (
        "http://127.0.0.1:9/oauth/authorize?client_id=cid&redirect_uri=https%3A%2F%2F"
        "c.example.com%2Fhubspot%2Foauth%2Fcallback&scope=oauth%20crm.objects.marketing_events"
        ".write&state=s")
    clock = FakeClock()
    table = InstallTable()
    table.put(oauth_install("a", access="t0", expires_at=NOW + 61))
    refresher = FakeRefresher(clock)
    tokens = AccessTokens.from_settings(settings, table, None, refresher, clock=clock)
    assert tokens.bearer("a") == "t0"  # 61 s left, margin 60: not due
    clock.advance(1)
    assert tokens.bearer("a") != "t0" and refresher.calls == ["na1-refresh-a"]
