"""App mode end to end: one deployment, 12 platform accounts, 5 HubSpot accounts.

On the real broker and the sandbox (one OAuth app, five hub ids): ten platform accounts install
the app through the real HTTP flow (the platform's signed link, HubSpot's authorize page,
`connector serve`'s OAuth callback), two by two into the same HubSpot account; one is linked to a
private-app token with `connector accounts link`; one never installs. Access tokens live 60 s
and are not refreshed ahead of expiry, and every live token is expired at once during the
first phase and again before the second, so requests meet 401 EXPIRED_AUTHENTICATION, refresh
and go again. The pipeline
(normalizer and sink, app mode) carries two phases of webinars per account; between them one
account's HubSpot uninstalls the app and an operator revokes another account, whose HubSpot
account stays installed for the platform account sharing it.

Every account's HubSpot ends as the oracle says; the account without an install, the
uninstalled and the revoked account have every remaining command in the dead-letter topic with
their reason, while every other account reaches its outcome (nothing lost, nothing waiting
behind them); after a re-install through the same flow, `connector dlq redrive --account` puts
the stopped accounts' commands in HubSpot. Last, the account that never installed installs and
`connector replay backfill --account` sends it what it published before, and nobody else
anything.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.config import Settings
from connector.demo.installs import install_through_flow, local_socket, redirect_url, serving
from connector.dlq.envelope import H_ACCOUNT, H_OFFSET, H_PARTITION, H_REASON, header_map
from connector.hubspot.oauth import READ_SCOPE, WRITE_SCOPE
from connector.installs.links import LinkSigner
from connector.kafka.reader import read_all
from connector.replay.spec import format_ms
from connector.runtime.assemble import run_normalizer
from connector.runtime.sink import run_sink
from connector.runtime.workers import run_workers
from connector.sample import Sample, SampleSpec, generate
from connector.sample.oracle import expected_outcome
from connector.sample.view import View, final_state
from connector.sandbox.app import create_app
from connector.sandbox.config import OAuthAppConfig, SandboxConfig
from connector.sandbox.server import RunningSandbox, serve_in_thread
from tests.pipeline_helpers import (
    app_mode_env,
    decode_commands,
    publish_more,
    settings_for,
    sink_caught_up,
    wait_for,
)

pytestmark = pytest.mark.integration

APP_ID = 4004
CLIENT_ID = "e2e-client-id-4004"
CLIENT_SECRET = "e2e-client-secret-4004"
LINK_SECRET = "e2e-platform-link-secret-0123456789"
DEFAULT_HUB = 62515  # the sandbox's default account: its private app's token addresses it
HUBS = (DEFAULT_HUB, 70000001, 70000002, 70000003, 70000004)
#: Platform account -> the HubSpot account it installs the OAuth app into.
OAUTH_INSTALLS = {
    "acct-01": 70000001, "acct-02": 70000001,  # two platform accounts, one HubSpot account
    "acct-03": 70000002, "acct-04": 70000002,
    "acct-05": 70000003, "acct-06": 70000003,
    "acct-07": 70000004, "acct-08": 70000004, "acct-11": 70000004,
    "acct-09": DEFAULT_HUB,  # uninstalled mid-stream; acct-10's private app shares its hub
}
PRIVATE_LINKED = "acct-10"
NO_INSTALL = "acct-12"  # installs at the end and backfills
BACKFILLED_HUB = 70000003
UNINSTALLED = "acct-09"
OPERATOR_REVOKED = "acct-02"  # its hub (70000001) stays installed for acct-01
ACCOUNTS = tuple(f"acct-{n:02d}" for n in range(1, 13))
PEOPLE = 24
SHARE = 6  # commands a platform account may hold (CONNECTOR_SINK__MAX_HELD_PER_ACCOUNT)
GUARD = 180.0  # longest wait for the pipeline: a guard, never a timing
DAY_MS = 86_400_000


@dataclass
class Phase:
    """One phase's input: the platform's records of every account, and each account's
    oracle outcome."""

    sample: Sample
    predicted: dict[str, View]


def phase(number: int) -> Phase:
    """A webinar per account (distinct ids: `web-<seed>-0`), a day apart per phase."""
    merged = Sample()
    predicted: dict[str, View] = {}
    for index, account in enumerate(ACCOUNTS):
        sample = generate(SampleSpec(
            seed=number * 100 + index, webinars=1, people_per_webinar=PEOPLE,
            account_id=account, known_contact_ratio=0.0,
            start_ms=1_767_261_600_000 + number * DAY_MS))
        merged.webinars.extend(sample.webinars)
        merged.activities.extend(sample.activities)
        ended = {w["webinarId"]: w for w in sample.webinars if w["status"] == "ENDED"}
        predicted[account] = expected_outcome(sample.activities, ended)
    return Phase(merged, predicted)


def combined(*phases: Phase) -> dict[str, View]:
    """Each account's outcome over several phases (their webinars are distinct)."""
    return {account: {k: v for p in phases for k, v in p.predicted[account].items()}
            for account in ACCOUNTS}


@dataclass
class World:
    """The sandbox, `connector serve`, the settings of the pipeline and the browser."""

    sandbox: RunningSandbox
    settings: Settings
    env: dict[str, str]
    serve_url: str
    http: httpx.Client

    def install(self, account: str, hub_id: int) -> None:
        install_through_flow(self.http, self.serve_url, LinkSigner(LINK_SECRET), account,
                             hub_id)

    def shown(self, account: str) -> View:
        """What ``account``'s HubSpot account shows of ``account``'s events."""
        hub = OAUTH_INSTALLS.get(account, BACKFILLED_HUB if account == NO_INSTALL else DEFAULT_HUB)
        state = self.http.get(f"{self.sandbox.url}/_sandbox/state",
                              params={"hub_id": hub}).json()
        state["events"] = [e for e in state["events"] if e["external_account_id"] == account]
        return final_state(state, set())

    def matches(self, expected: dict[str, View], accounts: tuple[str, ...]) -> bool:
        return all(self.shown(a) == expected[a] for a in accounts)

    def cli(self, *args: str) -> Any:
        result = CliRunner().invoke(main, [*args, "--json"], env=self.env)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout.splitlines()[0]) if result.stdout.strip() else None


@pytest.fixture
def world(kafka_bootstrap: str) -> Iterator[World]:
    sock, serve_url = local_socket()
    oauth_app = OAuthAppConfig(app_id=APP_ID, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                               redirect_uris=(redirect_url(serve_url),),
                               scopes=frozenset({READ_SCOPE, WRITE_SCOPE}))
    config = SandboxConfig.multi_account(hub_ids=HUBS[1:], oauth_apps=(oauth_app,),
                                         access_token_ttl_seconds=60.0,
                                         request_log_size=100_000, window_limit=190)
    with serve_in_thread(create_app(config)) as sandbox:
        env = app_mode_env(
            kafka_bootstrap, sandbox.url, redirect_url(serve_url), client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET, app_id=APP_ID, link_secret=LINK_SECRET,
            # no refresh ahead of expiry: every expiry, natural or forced, meets a 401
            CONNECTOR_INSTALLS__REFRESH_MARGIN_SECONDS="0",
            CONNECTOR_NORMALIZER__IDLE_PUNCTUATION_SECONDS="2",
            CONNECTOR_SINK__LINGER_MS="100",
            # a small share: accounts skip and are read again (seek) on the real broker
            CONNECTOR_SINK__MAX_HELD_PER_ACCOUNT=str(SHARE))
        settings = settings_for(env)
        with serving(settings, sock), httpx.Client(follow_redirects=False, timeout=30) as http:
            yield World(sandbox, settings, env, serve_url, http)


def commands_of(settings: Settings, account: str, webinars: set[str]) -> set[tuple[int, int]]:
    """(partition, offset) of ``account``'s commands for ``webinars`` on the commands topic."""
    messages = read_all(settings.kafka.consumer_config(), settings.topics.commands, timeout=10)
    decoded = decode_commands(messages)  # in the order of ``messages``
    return {(m.partition(), m.offset())
            for m, (_, command, _) in zip(messages, decoded, strict=True)
            if command.externalAccountId == account and command.externalEventId in webinars}


def letters_of(settings: Settings, account: str) -> list[dict[str, str]]:
    """The headers of ``account``'s dead letters on the commands' dead-letter topic."""
    letters = read_all(settings.kafka.consumer_config(), settings.topics.commands_dlq, timeout=5)
    headers = [header_map(m.headers()) for m in letters]
    return [h for h in headers if h.get(H_ACCOUNT) == account]


def sources(letters: list[dict[str, str]]) -> set[tuple[int, int]]:
    return {(int(h[H_PARTITION]), int(h[H_OFFSET])) for h in letters}


def webinars_of(p: Phase, account: str) -> set[str]:
    return {w["webinarId"] for w in p.sample.webinars if w["accountId"] == account}


def wait_for_first_request(sandbox: RunningSandbox, timeout: float = 60.0) -> None:
    """Polls every few ms: the first phase is applied within seconds of the first request."""
    deadline = time.monotonic() + timeout
    while not any(r.get("status") for r in list(sandbox.app.sandbox.request_log)
                  if "marketing" in str(r.get("path", ""))):
        assert time.monotonic() < deadline, "the sink sent no request"
        time.sleep(0.005)


def test_every_account_reaches_its_own_hubspot_account(world: World, create_topic: Any,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="connector.sink")
    settings, sandbox = world.settings, world.sandbox
    for account, hub_id in OAUTH_INSTALLS.items():
        world.install(account, hub_id)
    token = SandboxConfig.default().apps[0].token
    linked = CliRunner().invoke(main, ["accounts", "link", PRIVATE_LINKED,
                                       "--private-app-token-env", "E2E_PRIVATE_TOKEN",
                                       "--hub-id", str(DEFAULT_HUB)],
                                env={**world.env, "E2E_PRIVATE_TOKEN": token})
    assert linked.exit_code == 0, linked.output
    installs = {row["platformAccount"]: row for row in world.cli("accounts", "list")["installs"]}
    assert set(installs) == {*OAUTH_INSTALLS, PRIVATE_LINKED}
    assert token not in json.dumps(installs)

    first, second = phase(1), phase(2)
    started_ms = int(time.time() * 1000)
    create_topic(settings.topics.activity, 3, {"cleanup.policy": "delete"})
    create_topic(settings.topics.webinars, 3, {"cleanup.policy": "compact"})
    publish_more(settings, first.sample)
    stop = threading.Event()
    workers = threading.Thread(target=run_workers, daemon=True, args=(
        settings, {"normalizer": run_normalizer, "sink": run_sink}, stop))
    workers.start()
    try:
        wait_for_first_request(sandbox)
        expired = world.http.post(f"{sandbox.url}/_sandbox/tokens/expire").json()["expired"]
        assert expired >= 1
        installed = tuple(a for a in ACCOUNTS if a != NO_INSTALL)
        wait_for(lambda: world.matches(first.predicted, installed), GUARD,
                 "every installed account to show its first phase")

        uninstalled = world.http.post(
            f"{sandbox.url}/_sandbox/installs/{DEFAULT_HUB}/uninstall",
            json={"app_id": APP_ID})
        assert uninstalled.status_code == 200, uninstalled.text
        assert world.cli("accounts", "revoke", OPERATOR_REVOKED)["status"] == "revoked"
        # every access token the sink holds dies before the second phase: its first requests
        # meet 401 EXPIRED_AUTHENTICATION, refresh, and are sent again
        assert world.http.post(f"{sandbox.url}/_sandbox/tokens/expire").json()["expired"] >= 1
        logged_before_second = len(list(sandbox.app.sandbox.request_log))
        # An operator's revoke reaches the sink through the registry topic, within a poll:
        # what it applied of the account before then stays applied, the rest is dead-lettered
        publish_more(settings, second.sample)
        stopped = (UNINSTALLED, OPERATOR_REVOKED)
        flowing = tuple(a for a in installed if a not in stopped)
        both = combined(first, second)

        def phase_two(account: str) -> set[tuple[int, int]]:
            return commands_of(settings, account, webinars_of(second, account))

        def settled() -> bool:
            return (world.matches(both, flowing) and sink_caught_up(settings)
                    and sources(letters_of(settings, UNINSTALLED)) == phase_two(UNINSTALLED))

        def unsettled() -> str:
            behind = [a for a in flowing if world.shown(a) != both[a]]
            missing = len(phase_two(UNINSTALLED) - sources(letters_of(settings, UNINSTALLED)))
            return (f"accounts not at the oracle: {behind}; sink caught up: "
                    f"{sink_caught_up(settings)}; {UNINSTALLED} dead letters missing: {missing}")

        wait_for(settled, GUARD, "the others to show both phases, the uninstalled account's "
                                 "second phase to be dead-lettered", unsettled)
        assert phase_two(UNINSTALLED)
        assert sources(letters_of(settings, OPERATOR_REVOKED)) <= phase_two(OPERATOR_REVOKED)
        assert world.shown(UNINSTALLED) == first.predicted[UNINSTALLED]
        shown = world.shown(OPERATOR_REVOKED)
        assert {k: v for k, v in shown.items() if k in first.predicted[OPERATOR_REVOKED]} == \
            first.predicted[OPERATOR_REVOKED]
        for account in stopped:
            assert {h[H_REASON] for h in letters_of(settings, account)} == {
                "hubspot-install-revoked"}
            show = world.cli("accounts", "show", account)
            assert show["status"] == "revoked", show
        dead = sum(len(letters_of(settings, account)) for account in stopped)

        no_install = letters_of(settings, NO_INSTALL)
        assert sources(no_install) == commands_of(
            settings, NO_INSTALL, webinars_of(first, NO_INSTALL) | webinars_of(second, NO_INSTALL))
        assert {h[H_REASON] for h in no_install} == {"no-hubspot-install"}
        for account in flowing:
            assert letters_of(settings, account) == [], account

        for account in stopped:  # the customers install again
            world.install(account, OAUTH_INSTALLS[account])
        redriven = world.cli("dlq", "redrive", settings.topics.commands_dlq,
                             "--account", UNINSTALLED, "--account", OPERATOR_REVOKED, "--execute")
        assert redriven["sent"] == dead, redriven
        wait_for(lambda: world.matches(both, installed), GUARD,
                 "the redriven accounts to show both phases")
    finally:
        stop.set()
        workers.join(60)
    assert not workers.is_alive()

    # a new customer installs and backfills what it published before (the live workers
    # stopped: every request to HubSpot from here on is the backfill's)
    world.install(NO_INSTALL, BACKFILLED_HUB)
    logged = len(list(sandbox.app.sandbox.request_log))
    backfill = CliRunner().invoke(main, [
        "replay", "backfill", "--from", format_ms(started_ms - 60_000),
        "--account", NO_INSTALL, "--execute", "--timeout", str(int(GUARD))], env=world.env)
    assert backfill.exit_code == 0, backfill.output
    assert world.shown(NO_INSTALL) == both[NO_INSTALL]
    sent = [r for r in list(sandbox.app.sandbox.request_log)[logged:]
            if "marketing" in str(r.get("path", ""))]
    assert sent and {r["hubId"] for r in sent} == {BACKFILLED_HUB}  # no other hub's

    # the expired tokens met 401 EXPIRED_AUTHENTICATION, and the sink refreshed and went on
    log = list(sandbox.app.sandbox.request_log)[logged_before_second:]
    assert any(r.get("status") == 401 and "marketing" in str(r.get("path", "")) for r in log)
    assert letters_of(settings, NO_INSTALL) == no_install  # the redrive chose one account only
    # accounts went past their share and were read again (sought back) on the real broker
    assert any(r.getMessage().startswith("sink.account_share_rewind") for r in caplog.records)
