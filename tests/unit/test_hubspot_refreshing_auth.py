"""RefreshingBearerAuth: a token asked for each request; one retry, with a fresh token, after a
401 EXPIRED_AUTHENTICATION, and none after any other 401 or a second expired one."""

from __future__ import annotations

import threading

import httpx
import pytest

from connector.hubspot import AuthenticationError, HubSpotClient, RefreshingBearerAuth

EXPIRED = {"status": "error", "category": "EXPIRED_AUTHENTICATION",
           "message": "The OAuth token used to make this call expired 3 second(s) ago.",
           "correlationId": "c-1", "context": {"expire time": ["2026-12-07T10:00:00Z"]}}
INVALID = {"status": "error", "category": "INVALID_AUTHENTICATION",
           "message": "Authentication credentials not found.", "correlationId": "c-2"}
EVENT = {"objectId": "555", "eventName": "Webinar", "eventOrganizer": "Org",
         "externalAccountId": "a", "externalEventId": "w", "eventCancelled": False,
         "eventCompleted": False, "customProperties": []}


class Tokens:
    """Hands out token-1, then token-2 once token-1 was reported expired, and so on."""

    def __init__(self) -> None:
        self.version = 1
        self.reported: list[str] = []

    def bearer(self) -> str:
        return f"token-{self.version}"

    def expired(self, token: str) -> None:
        self.reported.append(token)
        if token == self.bearer():
            self.version += 1


def client_answering(answer: httpx.Response | dict[str, httpx.Response],
                     tokens: Tokens, seen: list[str], *, any_401: bool = False) -> HubSpotClient:
    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        seen.append(token)
        if isinstance(answer, dict):
            return answer.get(token, httpx.Response(200, json=EVENT))
        return answer

    return HubSpotClient(RefreshingBearerAuth(tokens.bearer, tokens.expired, any_401=any_401),
                         transport=httpx.MockTransport(handler))


def test_an_expired_token_is_reported_and_the_request_sent_once_more_with_a_fresh_one() -> None:
    tokens, seen = Tokens(), []
    client = client_answering({"token-1": httpx.Response(401, json=EXPIRED)}, tokens, seen)
    response = client.get_event(external_account_id="a", external_event_id="w")
    assert response.value.object_id == "555"
    assert seen == ["token-1", "token-2"] and tokens.reported == ["token-1"]
    client.get_event(external_account_id="a", external_event_id="w")
    assert seen[-1] == "token-2" and tokens.reported == ["token-1"]  # no refresh without cause


def test_an_invalid_token_is_not_retried() -> None:
    tokens, seen = Tokens(), []
    client = client_answering(httpx.Response(401, json=INVALID), tokens, seen)
    with pytest.raises(AuthenticationError) as raised:
        client.get_event(external_account_id="a", external_event_id="w")
    assert not raised.value.is_expired
    assert seen == ["token-1"] and tokens.reported == []


def test_with_any_401_an_invalid_token_is_refreshed_once_too() -> None:
    tokens, seen = Tokens(), []
    answers = {"token-1": httpx.Response(401, json=INVALID)}
    client = client_answering(answers, tokens, seen, any_401=True)
    assert client.get_event(external_account_id="a", external_event_id="w").status == 200
    assert seen == ["token-1", "token-2"] and tokens.reported == ["token-1"]


def test_a_second_expired_answer_is_the_callers_not_a_loop() -> None:
    tokens, seen = Tokens(), []
    client = client_answering(httpx.Response(401, json=EXPIRED), tokens, seen)
    with pytest.raises(AuthenticationError) as raised:
        client.get_event(external_account_id="a", external_event_id="w")
    assert raised.value.is_expired
    assert seen == ["token-1", "token-2"] and tokens.reported == ["token-1"]


def test_tokens_never_show_in_errors_or_reprs() -> None:
    tokens, seen = Tokens(), []
    echo = dict(INVALID, message="bad token token-1")
    client = client_answering(httpx.Response(401, json=echo), tokens, seen)
    with pytest.raises(AuthenticationError) as raised:
        client.get_event(external_account_id="a", external_event_id="w")
    assert "token-1" not in str(raised.value) and "token-1" not in repr(client)


def test_threads_each_keep_their_own_token() -> None:
    tokens = Tokens()
    seen: list[str] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        with lock:
            seen.append(token)
        return httpx.Response(200, json=EVENT)

    client = HubSpotClient(RefreshingBearerAuth(tokens.bearer, tokens.expired),
                           transport=httpx.MockTransport(handler))
    threads = [threading.Thread(target=lambda: client.get_event(
        external_account_id="a", external_event_id="w")) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == ["token-1"] * 8


def test_a_blank_token_from_the_provider_is_refused() -> None:
    client = HubSpotClient(RefreshingBearerAuth(lambda: "", lambda _t: None),
                           transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    with pytest.raises(ValueError, match="non-empty"):
        client.get_event(external_account_id="a", external_event_id="w")
