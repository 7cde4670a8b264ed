"""OAuthClient over httpx.MockTransport, answering with the reference's bodies (OAuth §2, §4)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connector.config import MARKETING_EVENT_SCOPES as SETTINGS_SCOPES
from connector.hubspot import (
    MARKETING_EVENT_SCOPES,
    AuthCodeRejected,
    AuthenticationError,
    ExpiredAuthenticationError,
    HubSpotConnectionError,
    HubSpotTimeoutError,
    OAuthClient,
    OAuthClientRejected,
    OAuthError,
    RateLimitedError,
    RefreshTokenRevoked,
    ServerError,
    UnexpectedResponseError,
    is_expired_authentication,
    is_retriable,
)
from connector.hubspot.errors import error_from_response

CLIENT_ID = "5ad6ff3c-0c8c-4bb3-8b44-111111111111"
CLIENT_SECRET = "cs-2f8a1c3e-9d0b-4b7e-a6c1-222222222222"
REDIRECT = "https://connector.example.com/hubspot/oauth/callback"
REFRESH = "na1-6e2b-4c7a-8f00-aaaaaaaaaaaa"
ACCESS = "CJDk9Mf8LxICAQEYv6WFBSDe0ZAJKJrz7wEyFGtoken-access-bbbbbbbbbbbb"
CODE = "code-7c1d9a4b-3f2e-4e5d-9c8b-cccccccccccc"
CID = "0b1c7d0e-aaaa-bbbb-cccc-123456789abc"
NOW = 1_767_225_600.0

# Reference OAuth §2: the token answer (snake_case wire keys).
SUCCESS = {"token_type": "bearer", "refresh_token": REFRESH, "access_token": ACCESS,
           "hub_id": 1234567, "scopes": ["oauth", *MARKETING_EVENT_SCOPES], "expires_in": 1800}
# Reference OAuth §2: a bad or revoked refresh token, on every version since January 2026 ...
INVALID_GRANT = {"error": "invalid_grant",
                 "error_description": "refresh token is invalid, expired or revoked",
                 "status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token",
                 "correlationId": CID}
# ... and before (no OAuth fields, only HubSpot's status word).
OLD_BAD_REFRESH = {"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token"}
EXPIRED_CODE = {"error": "invalid_grant", "error_description": "authorization code has expired",
                "status": "EXPIRED_AUTH_CODE", "message": "auth code is expired"}
BAD_CODE = {"error": "invalid_grant",
            "error_description": "authorization code is invalid or was already used",
            "status": "BAD_AUTH_CODE", "message": "missing or unknown auth code"}
INVALID_CLIENT = {"error": "invalid_client", "error_description": "client authentication failed",
                  "status": "BAD_CLIENT_SECRET", "message": "missing or invalid client secret"}
# Reference OAuth §4: the two 401s of an API call.
EXPIRED_401 = {"status": "error",
               "message": "The OAuth token used to make this call expired 0 second(s) ago.",
               "correlationId": CID, "category": "EXPIRED_AUTHENTICATION",
               "context": {"expire time": ["2026-01-01T00:30:00.000Z"]}}
INVALID_401 = {"status": "error", "message": "Authentication credentials not found. This API "
               "supports OAuth 2.0 authentication and you can find more details at "
               "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
               "correlationId": CID, "category": "INVALID_AUTHENTICATION"}


class Endpoint:
    """A MockTransport handler: records requests, answers each with the next scripted answer."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def form(self, index: int = -1) -> dict[str, str]:
        request = self.requests[index]
        return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def answer(status: int, body: Mapping[str, object]) -> httpx.Response:
    return httpx.Response(status, json=body, headers={"X-HubSpot-Correlation-Id": CID})


def client_for(endpoint: Callable[[httpx.Request], httpx.Response], **kwargs: object
               ) -> OAuthClient:
    return OAuthClient(CLIENT_ID, CLIENT_SECRET, REDIRECT, base_url="https://api.hubapi.com",
                       transport=httpx.MockTransport(endpoint), clock=lambda: NOW,
                       **kwargs)  # type: ignore[arg-type]


def test_authorize_url_has_every_parameter_space_separated_scopes_and_the_state() -> None:
    client = client_for(Endpoint(), optional_scopes=("crm.lists.read",))
    url = client.authorize_url("state-123")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == \
        "https://app.hubspot.com/oauth/authorize"
    assert "scope=crm.objects.marketing_events.read%20crm.objects.marketing_events.write" in url
    assert parse_qs(parts.query) == {
        "client_id": [CLIENT_ID], "redirect_uri": [REDIRECT],
        "scope": ["crm.objects.marketing_events.read crm.objects.marketing_events.write"],
        "optional_scope": ["crm.lists.read"], "state": ["state-123"]}
    # no optional scope asked for: no optional_scope parameter; another authorize page
    plain = OAuthClient(CLIENT_ID, CLIENT_SECRET, REDIRECT, scopes=("oauth", "a.b"),
                        authorize_url="http://127.0.0.1:8081/oauth/authorize")
    assert plain.authorize_url("s") == (
        f"http://127.0.0.1:8081/oauth/authorize?client_id={CLIENT_ID}&redirect_uri="
        f"https%3A%2F%2Fconnector.example.com%2Fhubspot%2Foauth%2Fcallback&scope=oauth%20a.b"
        f"&state=s")


def test_the_default_scopes_are_the_same_in_settings_and_client() -> None:
    assert SETTINGS_SCOPES == MARKETING_EVENT_SCOPES == (
        "crm.objects.marketing_events.read", "crm.objects.marketing_events.write")


def test_exchange_code_posts_a_form_to_v3_and_returns_the_grant() -> None:
    endpoint = Endpoint(answer(200, SUCCESS))
    grant = client_for(endpoint).exchange_code(CODE)

    request = endpoint.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "https://api.hubapi.com/oauth/v3/token"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert endpoint.form() == {"grant_type": "authorization_code", "client_id": CLIENT_ID,
                               "client_secret": CLIENT_SECRET, "code": CODE,
                               "redirect_uri": REDIRECT}
    assert (grant.access_token, grant.refresh_token, grant.hub_id) == (ACCESS, REFRESH, 1234567)
    assert grant.scopes == ("oauth", *MARKETING_EVENT_SCOPES)
    assert (grant.expires_in, grant.obtained_at, grant.expires_at) == (1800, NOW, NOW + 1800)


def test_refresh_posts_the_refresh_token_and_keeps_it_when_the_answer_has_none() -> None:
    without = {k: v for k, v in SUCCESS.items() if k != "refresh_token"}
    endpoint = Endpoint(answer(200, SUCCESS), answer(200, without))
    client = client_for(endpoint)

    first = client.refresh(REFRESH)
    assert endpoint.form(0) == {"grant_type": "refresh_token", "client_id": CLIENT_ID,
                                "client_secret": CLIENT_SECRET, "refresh_token": REFRESH}
    assert (first.access_token, first.refresh_token) == (ACCESS, REFRESH)
    second = client.refresh("na1-other")
    assert second.refresh_token == "na1-other"


@pytest.mark.parametrize(("grant_type", "status", "body", "cls", "category"), [
    ("refresh_token", 400, INVALID_GRANT, RefreshTokenRevoked, "BAD_REFRESH_TOKEN"),
    ("refresh_token", 400, OLD_BAD_REFRESH, RefreshTokenRevoked, "BAD_REFRESH_TOKEN"),
    ("refresh_token", 400, INVALID_CLIENT, OAuthClientRejected, "BAD_CLIENT_SECRET"),
    ("authorization_code", 400, EXPIRED_CODE, AuthCodeRejected, "EXPIRED_AUTH_CODE"),
    ("authorization_code", 400, BAD_CODE, AuthCodeRejected, "BAD_AUTH_CODE"),
    ("authorization_code", 401, INVALID_CLIENT, OAuthClientRejected, "BAD_CLIENT_SECRET"),
])
def test_oauth_refusals_are_typed_and_not_retriable(grant_type: str, status: int,
                                                    body: dict[str, object], cls: type,
                                                    category: str) -> None:
    client = client_for(Endpoint(answer(status, body)))
    call = client.refresh if grant_type == "refresh_token" else client.exchange_code

    with pytest.raises(OAuthError) as info:
        call(REFRESH if grant_type == "refresh_token" else CODE)

    error = info.value
    assert type(error) is cls
    assert (error.status, error.category) == (status, category)
    assert error.error == body.get("error")
    assert error.correlation_id == CID
    assert not is_retriable(error)
    assert category in str(error) and category in repr(error)


def test_a_revoked_refresh_is_never_confused_with_a_bad_code() -> None:
    # the same invalid_grant means a spent code on an exchange
    client = client_for(Endpoint(answer(400, INVALID_GRANT), answer(400, EXPIRED_CODE)))
    with pytest.raises(AuthCodeRejected):
        client.exchange_code(CODE)
    with pytest.raises(RefreshTokenRevoked):  # and an uninstall on a refresh
        client.refresh(REFRESH)


@pytest.mark.parametrize(("failure", "cls"), [
    (answer(503, {"status": "error", "message": "Service Unavailable"}), ServerError),
    (httpx.Response(502, text="<html>Bad Gateway</html>"), ServerError),
    (answer(429, {"status": "error", "message": "You have reached your ten_secondly_rolling "
                  "limit.", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}),
     RateLimitedError),
    (httpx.ConnectError("refused"), HubSpotConnectionError),
    (httpx.ReadTimeout("slow"), HubSpotTimeoutError),
])
def test_transient_failures_are_retriable(failure: httpx.Response | Exception,
                                          cls: type) -> None:
    endpoint = Endpoint(failure, answer(200, SUCCESS))
    client = client_for(endpoint)
    with pytest.raises(cls) as info:
        client.refresh(REFRESH)
    assert is_retriable(info.value)
    assert client.refresh(REFRESH).access_token == ACCESS  # and the retry works


@pytest.mark.parametrize("body", [
    {"refresh_token": REFRESH, "hub_id": 1, "expires_in": 1800},          # no access token
    {"access_token": ACCESS, "refresh_token": REFRESH, "hub_id": 1},     # no lifetime
    {"access_token": ACCESS, "refresh_token": REFRESH, "expires_in": 1800},  # no hub id
])
def test_an_exchange_answer_without_what_the_install_needs_is_unexpected(
        body: dict[str, object]) -> None:
    with pytest.raises(UnexpectedResponseError) as info:
        client_for(Endpoint(answer(200, body))).exchange_code(CODE)
    assert info.value.body == b""  # the answer's tokens are never kept in the error
    assert ACCESS not in str(info.value) and REFRESH not in str(info.value)


def test_no_secret_reaches_repr_str_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    echo = {**INVALID_GRANT, "message": f"refresh token {REFRESH} is not valid for {CLIENT_SECRET}"}
    client = client_for(Endpoint(answer(200, SUCCESS), answer(400, echo)))
    caplog.set_level(logging.DEBUG)

    grant = client.refresh(REFRESH)
    with pytest.raises(RefreshTokenRevoked) as info:
        client.refresh(REFRESH)

    shown = " ".join([repr(grant), str(grant), repr(client), str(info.value), repr(info.value),
                      info.value.message, info.value.body.decode(), caplog.text])
    for secret in (ACCESS, REFRESH, CLIENT_SECRET):
        assert secret not in shown
    assert "****" in info.value.body.decode()  # scrubbed, not dropped
    assert grant.fingerprint == f"****{ACCESS[-4:]}"


def test_401_expired_and_invalid_authentication_are_told_apart() -> None:
    expired = error_from_response(401, {}, json.dumps(EXPIRED_401).encode())
    invalid = error_from_response(401, {"X-HubSpot-Auth-Failure": "401 Unauthorized"},
                                  json.dumps(INVALID_401).encode())
    other = error_from_response(403, {}, json.dumps({**EXPIRED_401, "status": "error"}).encode())

    assert type(expired) is ExpiredAuthenticationError
    assert isinstance(expired, AuthenticationError)  # handlers of any 401 still catch it
    assert type(invalid) is AuthenticationError
    assert (is_expired_authentication(expired), is_expired_authentication(invalid)) == (True,
                                                                                        False)
    assert expired.context == {"expire time": ["2026-01-01T00:30:00.000Z"]}
    assert not is_expired_authentication(other)  # a 403 is never a refresh signal
    assert not is_expired_authentication(ValueError("EXPIRED_AUTHENTICATION"))
