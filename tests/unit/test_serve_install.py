"""The install flow's routes (connector.serve.install) through Starlette's TestClient, with a fake
token endpoint and a fake registry writer: the platform's signed link checked first (403 page
otherwise), the redirect and its state, every error page, nothing written on errors, exactly one
install written on success, private-app mode's 404."""

from __future__ import annotations

import html
import logging
import re
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from connector.config import Settings, load_settings
from connector.errors import ConfigError
from connector.hubspot.errors import (
    AuthCodeRejected,
    HubSpotConnectionError,
    HubSpotError,
    OAuthClientRejected,
    ServerError,
)
from connector.hubspot.oauth import READ_SCOPE, WRITE_SCOPE, OAuthClient, TokenGrant
from connector.installs.errors import InstallWriteFailed
from connector.installs.links import LinkSigner
from connector.installs.model import Install
from connector.installs.registry import InstallTable
from connector.installs.state import StateSigner
from connector.kafka.clients import KafkaException
from connector.serve import (
    DEFAULT_CALLBACK_PATH,
    INSTALL_PATH,
    InstallFlow,
    LazyInstallWriter,
    build_serve,
    callback_path,
    create_serve_app,
    disabled_routes,
)
from tests.unit.installs_helpers import KEY_A, NOW, FakeClock, MemoryWriter

SECRET = "state-secret-for-unit-tests-0001"
LINK_SECRET = "platform-link-secret-for-unit-tests"
REDIRECT = "https://connector.example.com/hubspot/oauth/callback"
AUTHORIZE = "https://app.hubspot.com/oauth/authorize"
ACCESS = "access-token-" + "a" * 300
REFRESH = "na1-refresh-0000-1111"
CODE = "code-5f0e1d2c"
HUB_ID = 70000002


class FakeOAuth:
    """The app's OAuth client: the real authorize URL; the token endpoint answers ``grant`` or
    raises ``error``, and remembers each code it was asked for."""

    def __init__(self, grant: TokenGrant | None = None, error: Exception | None = None) -> None:
        self._real = OAuthClient("client-id-4004", "client-secret-4004", REDIRECT,
                                 authorize_url=AUTHORIZE)
        self.grant = grant or grant_of(("oauth", READ_SCOPE, WRITE_SCOPE))
        self.error = error
        self.codes: list[str] = []
        self.closed = False

    def authorize_url(self, state: str) -> str:
        return self._real.authorize_url(state)

    def exchange_code(self, code: str) -> TokenGrant:
        self.codes.append(code)
        if self.error is not None:
            raise self.error
        return self.grant

    def close(self) -> None:
        self.closed = True
        self._real.close()


def grant_of(scopes: tuple[str, ...], refresh: str = REFRESH) -> TokenGrant:
    return TokenGrant(access_token=ACCESS, refresh_token=refresh, hub_id=HUB_ID, scopes=scopes,
                      expires_in=1800, obtained_at=NOW)


class Flow:
    """The flow under test, its fakes and a client."""

    def __init__(self, oauth: FakeOAuth | None = None, *, fail_writes: bool = False,
                 **options: Any) -> None:
        self.clock = FakeClock()
        self.oauth = oauth or FakeOAuth()
        self.signer = StateSigner(SECRET, ttl_seconds=600, clock=self.clock)
        self.links = LinkSigner(LINK_SECRET, clock=self.clock)
        self.writer = MemoryWriter(InstallTable(), fail=fail_writes)
        self.flow = InstallFlow(self.oauth, self.signer, self.writer, links=self.links,
                                clock=self.clock, **options)
        app = create_serve_app(lambda _id: None, client_secret="s", app_id=1,
                               extra_routes=self.flow.routes())
        self.client = TestClient(app, follow_redirects=False)

    def link(self, account: str = "acct-7", ttl: float = 3600) -> dict[str, str]:
        """The query of a link the platform signed for ``account``."""
        return self.links.sign(account, ttl).params()

    def start(self, account: str = "acct-7") -> str:
        """GET the platform's signed install link; the state HubSpot would echo."""
        response = self.client.get(INSTALL_PATH, params=self.link(account))
        assert response.status_code == 302, response.text
        return parse_qs(urlsplit(response.headers["location"]).query)["state"][0]

    def back(self, **params: str) -> Any:
        return self.client.get(self.flow.callback_path, params=params)


def start_again_link(page_text: str) -> str:
    """The href of a page's one link."""
    [href] = re.findall(r'href="([^"]+)"', page_text)
    return html.unescape(href)


def connector_logs(caplog: pytest.LogCaptureFixture) -> str:
    """What the connector logged (not the test's own HTTP client, whose httpx logs every URL
    it sends, callback codes included, when an earlier test left INFO on)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("connector"))


def assert_clean(text: str) -> None:
    """No token, code or state in a page or a log."""
    for secret in (ACCESS, REFRESH, CODE, "v1."):
        assert secret not in text


# --------------------------------------------------------------------------- GET /hubspot/install


def test_install_redirects_to_the_authorize_page_with_a_state_naming_the_account() -> None:
    flow = Flow()
    response = flow.client.get(INSTALL_PATH, params={**flow.link("acct-7"), "account": "  acct-7 "})
    assert response.status_code == 302
    assert response.headers["cache-control"] == "no-store"
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == AUTHORIZE
    query = parse_qs(location.query)
    assert query["client_id"] == ["client-id-4004"]
    assert query["redirect_uri"] == [REDIRECT]
    assert query["scope"] == [f"{READ_SCOPE} {WRITE_SCOPE}"]
    assert flow.signer.verify(query["state"][0]) == "acct-7"  # stripped, round trip
    assert flow.writer.written == []


def test_each_install_link_gets_its_own_state() -> None:
    flow = Flow()
    assert flow.start() != flow.start()


@pytest.mark.parametrize(("params", "why"), [
    ({}, "names no platform account"),
    ({"account": ""}, "names no platform account"),
    ({"account": "   "}, "names no platform account"),
    ({"account": "x" * 257}, "longer than 256"),
    ({"account": "acct\n7"}, "cannot be printed"),
])
def test_install_without_a_usable_account_is_a_400_page(params: dict[str, str], why: str) -> None:
    flow = Flow()
    response = flow.client.get(INSTALL_PATH, params=params)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert why in response.text
    assert "location" not in response.headers


def test_an_account_with_markup_is_escaped_on_every_page() -> None:
    flow = Flow()
    state = flow.start("<b>acct</b>")
    response = flow.back(code=CODE, state=state)
    assert response.status_code == 200
    assert "&lt;b&gt;acct&lt;/b&gt;" in response.text and "<b>acct" not in response.text
    assert [i.platform_account for i in flow.writer.written] == ["<b>acct</b>"]


# --------------------------------------------------------------------------- the platform's link


def tamper(params: dict[str, str], name: str) -> dict[str, str]:
    """``params`` with one field changed as an attacker would."""
    changed = dict(params)
    if name == "account":
        changed["account"] = "acct-8"  # someone else's account, same expiry and signature
    elif name == "expires":
        changed["expires"] = str(int(params["expires"]) + 86400)  # a longer life
    else:
        flipped = "0" if params["signature"][0] != "0" else "1"
        changed["signature"] = flipped + params["signature"][1:]
    return changed


def assert_refused_403(flow: Flow, response: Any) -> None:
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert "location" not in response.headers
    assert ("This install link is invalid or expired; ask for a new one from your webinar "
            "platform.") in response.text
    assert "href=" not in response.text  # no way on from here but a new link
    assert flow.oauth.codes == [] and flow.writer.written == []


@pytest.mark.parametrize(("drop", "reason"), [
    (("expires", "signature"), "missing"),
    (("signature",), "missing"),
    (("expires",), "missing"),
])
def test_a_link_without_the_platforms_signature_is_a_403_page(
        drop: tuple[str, ...], reason: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="connector.serve")
    flow = Flow()
    params = {k: v for k, v in flow.link("acct-7").items() if k not in drop}
    assert_refused_403(flow, flow.client.get(INSTALL_PATH, params=params))
    [record] = [r for r in caplog.records if "install_link_rejected" in r.getMessage()]
    assert record.getMessage() == f"serve.install_link_rejected account=acct-7 reason={reason}"
    assert record.levelno == logging.WARNING
    assert "serve.install_started" not in caplog.text


@pytest.mark.parametrize("field", ["account", "expires", "signature"])
def test_a_tampered_link_is_a_403_page(field: str, caplog: pytest.LogCaptureFixture) -> None:
    flow = Flow()
    params = tamper(flow.link("acct-7"), field)
    assert_refused_403(flow, flow.client.get(INSTALL_PATH, params=params))
    assert (f"serve.install_link_rejected account={params['account']} reason=bad-signature"
            in caplog.text)


def test_a_link_signed_with_another_secret_is_a_403_page() -> None:
    flow = Flow()
    foreign = LinkSigner("not-the-platforms-secret", clock=flow.clock).sign("acct-7").params()
    assert_refused_403(flow, flow.client.get(INSTALL_PATH, params=foreign))


def test_an_expired_link_is_a_403_page(caplog: pytest.LogCaptureFixture) -> None:
    flow = Flow()
    params = flow.link("acct-7", ttl=60)
    flow.clock.advance(60)
    assert flow.client.get(INSTALL_PATH, params=params).status_code == 302  # its last second
    flow.clock.advance(1)
    assert_refused_403(flow, flow.client.get(INSTALL_PATH, params=params))
    assert "serve.install_link_rejected account=acct-7 reason=expired" in caplog.text


def test_a_malformed_signature_or_expiry_is_a_403_page() -> None:
    flow = Flow()
    good = flow.link("acct-7")
    for changed in ({"signature": "zz" * 32}, {"signature": "é" * 64}, {"signature": "ab"},
                    {"expires": "-1"}, {"expires": "1e12"}, {"expires": " " + good["expires"]}):
        response = flow.client.get(INSTALL_PATH, params={**good, **changed})
        assert_refused_403(flow, response)


def test_the_account_is_checked_before_the_signature() -> None:
    flow = Flow()
    response = flow.client.get(INSTALL_PATH, params={"account": "", "expires": "1",
                                                     "signature": "0" * 64})
    assert response.status_code == 400 and "names no platform account" in response.text


# --------------------------------------------------------------------------- success


def test_a_completed_install_writes_one_install_and_names_account_and_hub(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="connector.serve")
    flow = Flow()
    state = flow.start("acct-7")
    flow.clock.advance(42)
    response = flow.back(code=CODE, state=state)

    assert response.status_code == 200, response.text
    assert flow.oauth.codes == [CODE]
    assert flow.writer.written == [Install(
        platform_account="acct-7", kind="oauth", hub_id=HUB_ID,
        scopes=("oauth", READ_SCOPE, WRITE_SCOPE), status="active", refresh_token=REFRESH,
        access_token=ACCESS, access_expires_at=NOW + 1800, installed_at=NOW + 42,
        updated_at=NOW + 42)]
    assert "HubSpot connected" in response.text
    assert "acct-7" in response.text and str(HUB_ID) in response.text
    assert "missing" not in response.text
    assert response.headers["referrer-policy"] == "no-referrer"
    assert_clean(response.text)
    assert f"serve.installed account=acct-7 hub_id={HUB_ID}" in caplog.text
    assert_clean(connector_logs(caplog))


def test_a_grant_without_the_write_scope_is_written_and_the_page_names_what_is_missing(
        caplog: pytest.LogCaptureFixture) -> None:
    flow = Flow(FakeOAuth(grant_of(("oauth", READ_SCOPE))))
    response = flow.back(code=CODE, state=flow.start())
    assert response.status_code == 200
    assert [(i.platform_account, i.scopes) for i in flow.writer.written] == [
        ("acct-7", ("oauth", READ_SCOPE))]
    assert "permissions missing" in response.text
    assert f"<code>{WRITE_SCOPE}</code>" in response.text
    assert f"missing={WRITE_SCOPE}" in caplog.text


# --------------------------------------------------------------------------- errors


def test_declining_shows_a_cancelled_page_and_writes_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="connector.serve")
    flow = Flow()
    response = flow.back(error="access_denied", error_description="The user declined",
                         state=flow.start())
    assert response.status_code == 200
    assert "Install cancelled" in response.text
    again = start_again_link(response.text)
    assert again.startswith(f"{INSTALL_PATH}?account=acct-7&expires=")
    assert flow.oauth.codes == [] and flow.writer.written == []
    assert "serve.install_declined account=acct-7" in caplog.text
    assert flow.client.get(again).status_code == 302  # a link serve signed: it starts again


def test_another_hubspot_error_shows_its_code_only() -> None:
    flow = Flow()
    response = flow.back(error="server_error", error_description="<script>x</script>",
                         state=flow.start())
    assert response.status_code == 400
    assert "server_error" in response.text and "script" not in response.text
    weird = flow.back(error="<img src=x>", state="forged")
    assert weird.status_code == 400 and "unknown" in weird.text and "<img" not in weird.text
    assert flow.oauth.codes == [] and flow.writer.written == []


@pytest.mark.parametrize("state", ["", "not-a-state", "v1.e30.AAAA"])
def test_a_malformed_or_missing_state_is_a_400_page(state: str) -> None:
    flow = Flow()
    response = flow.back(code=CODE, state=state)
    assert response.status_code == 400
    assert "expired or is invalid" in response.text and "start again" in response.text.lower()
    assert flow.oauth.codes == [] and flow.writer.written == []


def test_a_state_signed_with_another_secret_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    flow = Flow()
    forged = StateSigner("another-secret-of-16-chars", clock=flow.clock).sign("acct-7")
    response = flow.back(code=CODE, state=forged)
    assert response.status_code == 400
    assert flow.oauth.codes == [] and flow.writer.written == []
    assert "reason=bad-signature" in caplog.text


def test_an_expired_state_is_refused() -> None:
    flow = Flow()
    state = flow.start()
    flow.clock.advance(601)
    response = flow.back(code=CODE, state=state)
    assert response.status_code == 400
    assert "expired" in response.text
    assert flow.oauth.codes == [] and flow.writer.written == []


def test_a_callback_without_a_code_is_a_400_page() -> None:
    flow = Flow()
    response = flow.back(state=flow.start())
    assert response.status_code == 400
    assert "no authorization code" in response.text
    assert flow.oauth.codes == [] and flow.writer.written == []


def code_rejected() -> AuthCodeRejected:
    return AuthCodeRejected(status=400, message="auth code not found", category="BAD_AUTH_CODE",
                            error="invalid_grant")


@pytest.mark.parametrize(("error", "status", "says"), [
    (code_rejected(), 400, "already used or has expired"),
    (OAuthClientRejected(status=400, message="bad secret", category="BAD_CLIENT_SECRET",
                         error="invalid_client"), 500, "misconfigured"),
    (ServerError(status=503, message="unavailable"), 502, "try again"),
    (HubSpotConnectionError("refused", method="POST", path="/oauth/v3/token"), 502,
     "try again"),
])
def test_a_refused_or_failed_exchange_is_a_page_and_writes_nothing(
        error: HubSpotError, status: int, says: str,
        caplog: pytest.LogCaptureFixture) -> None:
    flow = Flow(FakeOAuth(error=error))
    response = flow.back(code=CODE, state=flow.start())
    assert response.status_code == status
    assert says in response.text.lower()
    assert flow.oauth.codes == [CODE]
    assert flow.writer.written == []
    assert "account=acct-7" in caplog.text
    assert_clean(response.text)
    assert_clean(connector_logs(caplog))


def test_wrong_app_credentials_are_logged_for_the_operator(
        caplog: pytest.LogCaptureFixture) -> None:
    flow = Flow(FakeOAuth(error=OAuthClientRejected(status=400, message="bad secret",
                                                    category="BAD_CLIENT_SECRET",
                                                    error="invalid_client")))
    flow.back(code=CODE, state=flow.start())
    [record] = [r for r in caplog.records if r.getMessage().startswith(
        "serve.install_client_rejected")]
    assert record.levelno == logging.ERROR
    assert "CONNECTOR_HUBSPOT__CLIENT_SECRET" in record.getMessage()


def test_a_reused_code_writes_nothing_new() -> None:
    flow = Flow()
    state = flow.start()
    assert flow.back(code=CODE, state=state).status_code == 200
    flow.oauth.error = code_rejected()
    replay = flow.back(code=CODE, state=state)
    assert replay.status_code == 400
    assert len(flow.writer.written) == 1


def test_a_registry_write_failure_is_a_503_page_logged_with_the_reason(
        caplog: pytest.LogCaptureFixture) -> None:
    flow = Flow(fail_writes=True)
    response = flow.back(code=CODE, state=flow.start())
    assert response.status_code == 503
    assert "could not be saved" in response.text and str(HUB_ID) in response.text
    assert len(flow.writer.table) == 0
    [record] = [r for r in caplog.records if r.getMessage().startswith(
        "serve.install_write_failed")]
    assert record.levelno == logging.ERROR
    assert "account=acct-7" in record.getMessage() and "broker away" in record.getMessage()
    assert_clean(connector_logs(caplog))


def test_a_grant_without_a_refresh_token_is_not_written() -> None:
    flow = Flow(FakeOAuth(grant_of(("oauth", WRITE_SCOPE), refresh="")))
    response = flow.back(code=CODE, state=flow.start())
    assert response.status_code == 502
    assert flow.writer.written == []


def test_links_to_start_again_use_the_public_url_and_are_signed_for_a_state_lifetime() -> None:
    flow = Flow(FakeOAuth(error=code_rejected()),
                public_url="https://connector.example.com/hs/")
    response = flow.back(code=CODE, state=flow.start("acct 7/x"))
    again = urlsplit(start_again_link(response.text))
    assert (again.scheme, again.netloc, again.path) == ("https", "connector.example.com",
                                                        "/hs/hubspot/install")
    query = {name: values[0] for name, values in parse_qs(again.query).items()}
    assert query["account"] == "acct 7/x"
    assert int(query["expires"]) == int(flow.clock() + 600)  # the state's TTL, not the link's
    assert flow.links.verify("acct 7/x", query["expires"], query["signature"])
    opened = flow.client.get(INSTALL_PATH, params=query)
    assert opened.status_code == 302
    flow.clock.advance(601)
    assert flow.client.get(INSTALL_PATH, params=query).status_code == 403


# --------------------------------------------------------------------------- the writer


def test_the_lazy_writer_is_created_on_the_first_write_and_retried_after_a_failure() -> None:
    made: list[MemoryWriter] = []
    fail = [True]

    def factory() -> Any:
        if fail[0]:
            raise KafkaException("broker transport failure")
        made.append(MemoryWriter(InstallTable()))
        return made[-1]

    lazy = LazyInstallWriter(factory)
    install = Install.from_grant("acct-7", grant_of(("oauth", WRITE_SCOPE)), now=NOW)
    with pytest.raises(InstallWriteFailed, match="broker transport failure"):
        lazy.put(install)
    fail[0] = False
    lazy.put(install)
    lazy.put(install)
    assert len(made) == 1 and made[0].written == [install, install]


# --------------------------------------------------------------------------- paths and wiring


@pytest.mark.parametrize(("redirect", "public", "path"), [
    (None, None, DEFAULT_CALLBACK_PATH),
    ("https://c.example.com/hubspot/oauth/callback", None, "/hubspot/oauth/callback"),
    ("https://c.example.com/oauth-callback?x=1", None, "/oauth-callback"),
    ("https://c.example.com/hs/cb", "https://c.example.com/hs", "/cb"),
    ("https://c.example.com/hs/cb", "https://other.example.com/hs", "/hs/cb"),
])
def test_the_callback_route_follows_the_redirect_url(redirect: str | None, public: str | None,
                                                     path: str) -> None:
    assert callback_path(redirect, public) == path


@pytest.mark.parametrize("redirect", ["https://c.example.com/healthz",
                                      "https://c.example.com/hubspot/install",
                                      "https://c.example.com/events/x"])
def test_a_callback_path_taken_by_another_route_is_refused(redirect: str) -> None:
    with pytest.raises(ConfigError, match="taken by another route"):
        callback_path(redirect)


def settings(**env: str) -> Settings:
    return load_settings({"CONNECTOR_HUBSPOT__CLIENT_SECRET": "client-secret-4004",
                          "CONNECTOR_HUBSPOT__APP_ID": "4004",
                          "CONNECTOR_TELEMETRY__METRICS": "none", **env})


def test_private_app_mode_answers_the_install_paths_404() -> None:
    served = build_serve(settings(), stop=threading.Event())
    assert served.installs is None
    client = TestClient(served.app, follow_redirects=False)
    for path in (f"{INSTALL_PATH}?account=acct-7", f"{DEFAULT_CALLBACK_PATH}?code=c&state=s"):
        response = client.get(path)
        assert response.status_code == 404
        assert "private-app mode" in response.text
        assert "CONNECTOR_HUBSPOT__MODE=app" in response.text
    assert len(disabled_routes()) == 2


def test_app_mode_mounts_the_flow_at_the_redirect_urls_path() -> None:
    served = build_serve(settings(
        CONNECTOR_HUBSPOT__MODE="app", CONNECTOR_HUBSPOT__CLIENT_ID="client-id-4004",
        CONNECTOR_HUBSPOT__REDIRECT_URL="https://connector.example.com/oauth/back",
        CONNECTOR_INSTALLS__ENCRYPTION_KEYS=KEY_A,
        CONNECTOR_INSTALLS__STATE_SECRET=SECRET,
        CONNECTOR_INSTALLS__INSTALL_LINK_SECRET=LINK_SECRET), stop=threading.Event())
    assert served.installs is not None and served.installs.callback_path == "/oauth/back"
    client = TestClient(served.app, follow_redirects=False)
    assert client.get(INSTALL_PATH, params={"account": "acct-7"}).status_code == 403
    started = client.get(INSTALL_PATH, params=LinkSigner(LINK_SECRET).sign("acct-7").params())
    assert started.status_code == 302
    query = parse_qs(urlsplit(started.headers["location"]).query)
    assert query["redirect_uri"] == ["https://connector.example.com/oauth/back"]
    assert StateSigner(SECRET).verify(query["state"][0]) == "acct-7"
    assert client.get("/oauth/back", params={"state": "forged", "code": CODE}).status_code == 400
    assert client.get(DEFAULT_CALLBACK_PATH).status_code == 404  # not the default path then
    served.close()
    served.close()  # idempotent
