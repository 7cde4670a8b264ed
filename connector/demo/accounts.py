"""App mode end to end (`connector demo --accounts N`): the connector as a HubSpot public app that
several platform accounts install, each into its own HubSpot account.

A local Kafka cluster; the HubSpot sandbox with N HubSpot accounts and the connector's public
app (OAuth); `connector serve` with the install flow; each platform account (acct-1 .. acct-N)
installing the app through the real HTTP flow (the install link the platform signed -> HubSpot's
authorize page, approved as that account's HubSpot account -> serve's OAuth callback, which
writes the install to the registry topic); a synthetic webinar per account published; normalizer
and sink run in app mode until every HubSpot account shows what its own platform account's input
predicts, and nothing of another's (or the timeout); what each shows read back.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.fernet import Fernet

from connector.config import MARKETING_EVENT_SCOPES, Settings, load_settings
from connector.demo.cluster import Say, local_kafka
from connector.demo.installs import install_through_flow, local_socket, redirect_url, serving
from connector.demo.publish import platform_topics, publish_to_platform
from connector.demo.run import (
    TOPIC_PARTITIONS,
    dead_letters_by_account,
    demo_env,
    run_pipeline_until,
)
from connector.installs.links import LinkSigner
from connector.kafka import ensure_topics
from connector.sample import Sample, SampleSpec, generate
from connector.sample.oracle import expected_outcome
from connector.sample.view import View, hubspot_view
from connector.sandbox import SandboxConfig, create_app
from connector.sandbox.config import OAuthAppConfig
from connector.sandbox.server import serve_in_thread

#: The demo's public app in the sandbox (HubSpot would show its id under the app's Auth tab).
APP_ID = 4004
CLIENT_ID = "webinar-connector-demo-4004"
#: HubSpot's limit per installing account for a public app (the sandbox enforces it).
OAUTH_WINDOW_LIMIT = 110
#: Longest wait for a page of the install flow: a guard, never a timing.
HTTP_GUARD = 30.0


@dataclass(frozen=True)
class AccountsSpec:
    """What to run: how many platform accounts install the app, each one's synthetic input, how
    long to wait for HubSpot, which broker."""

    accounts: int = 3
    webinars: int = 1
    people: int = 40
    #: Account i (from 0) gets seed + i: its webinars are web-<seed + i>-<n>, distinct.
    seed: int = 7
    timeout: float = 60.0
    broker: str = "auto"


@dataclass(frozen=True)
class AccountOutcome:
    """One platform account: the HubSpot account it installed into, what its input predicts
    there and what that HubSpot account shows."""

    account: str
    hub_id: int
    sample: Sample
    predicted: View
    shown: View
    #: The HubSpot account's state document (its marketing events among it).
    state: dict[str, Any]
    #: This account's dead letters counted by reason (every dead-letter topic).
    dead_letters: Counter[str] = field(default_factory=Counter)

    @property
    def webinar_ids(self) -> list[str]:
        """The webinars of this account's input."""
        return sorted({w["webinarId"] for w in self.sample.webinars})

    @property
    def foreign_events(self) -> list[str]:
        """Marketing events in this HubSpot account that are not this platform account's."""
        return foreign_events(self.state, self.account, set(self.webinar_ids))

    @property
    def matched(self) -> bool:
        """HubSpot shows exactly the prediction, and nothing of another account's."""
        return self.shown == self.predicted and not self.foreign_events


@dataclass(frozen=True)
class AccountsResult:
    """What the demo found, per platform account."""

    settings: Settings
    outcomes: list[AccountOutcome]
    #: The sandbox's default HubSpot account, which nobody installed the app into: its events.
    default_hub_id: int
    default_hub_events: list[str]
    #: Dead letters no stage could name an account for, counted by reason.
    unattributed_dead_letters: Counter[str]
    #: Seconds from the start to the moment HubSpot was read back.
    elapsed: float

    @property
    def matched(self) -> bool:
        """Every account matched its prediction, and the uninstalled account holds nothing."""
        return all(o.matched for o in self.outcomes) and not self.default_hub_events


def foreign_events(state: dict[str, Any], account: str, webinar_ids: set[str]) -> list[str]:
    """The marketing events of a HubSpot account's ``state`` that are not ``account``'s own
    webinars (another platform account's, or unknown)."""
    return sorted(f"{e['external_account_id']}/{e['external_event_id']}" for e in state["events"]
                  if e["external_account_id"] != account
                  or e["external_event_id"] not in webinar_ids)


def app_settings(bootstrap: str, sandbox_url: str, redirect: str, client_secret: str,
                 secret: Callable[[], str]) -> Settings:
    """The connector's settings in app mode against the sandbox: the app's credentials, its
    redirect URL (serve's callback), the sandbox's authorize page, fresh keys and secrets."""
    return load_settings({
        **demo_env(bootstrap, sandbox_url),
        "CONNECTOR_HUBSPOT__MODE": "app",
        "CONNECTOR_HUBSPOT__APP_ID": str(APP_ID),
        "CONNECTOR_HUBSPOT__CLIENT_ID": CLIENT_ID,
        "CONNECTOR_HUBSPOT__CLIENT_SECRET": client_secret,
        "CONNECTOR_HUBSPOT__REDIRECT_URL": redirect,
        "CONNECTOR_HUBSPOT__AUTHORIZE_URL": f"{sandbox_url}/oauth/authorize",
        "CONNECTOR_INSTALLS__ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "CONNECTOR_INSTALLS__STATE_SECRET": secret(),
        "CONNECTOR_INSTALLS__INSTALL_LINK_SECRET": secret(),
        "CONNECTOR_SERVE__KAFKA_CHECK_SECONDS": "5",
    })


@contextlib.contextmanager
def run_accounts_demo(spec: AccountsSpec, say: Say, *, started: float | None = None,
                      on_settings: Callable[[Settings], None] | None = None
                      ) -> Iterator[AccountsResult]:
    """Run the app-mode demo; the result is yielded while the cluster, the sandbox and serve
    still run. ``say``, ``started``, ``on_settings``: as :func:`connector.demo.run.run_demo`."""
    if spec.accounts < 1:
        raise ValueError("the demo needs one platform account at least")
    started = time.monotonic() if started is None else started
    sock, serve_url = local_socket()
    redirect = redirect_url(serve_url)
    client_secret = secrets.token_urlsafe(24)
    sandbox_config = SandboxConfig.multi_account(
        spec.accounts, oauth_window_limit=OAUTH_WINDOW_LIMIT,
        oauth_apps=(OAuthAppConfig(app_id=APP_ID, client_id=CLIENT_ID,
                                   client_secret=client_secret, redirect_uris=(redirect,),
                                   scopes=frozenset(MARKETING_EVENT_SCOPES),
                                   name="Webinar connector (demo)"),))
    default_hub, *hub_ids = sandbox_config.hub_ids
    accounts = [f"acct-{n}" for n in range(1, spec.accounts + 1)]
    with contextlib.ExitStack() as running:
        running.callback(sock.close)  # serve owns it once it runs; closing twice is harmless
        bootstrap = running.enter_context(local_kafka(spec.broker, say))
        sandbox = running.enter_context(serve_in_thread(create_app(sandbox_config)))
        say(f"HubSpot sandbox at {sandbox.url}: {spec.accounts} HubSpot accounts "
            f"({', '.join(map(str, hub_ids))}) and the connector's public app (OAuth, "
            f"{OAUTH_WINDOW_LIMIT} requests / 10 s per installing account)")
        settings = app_settings(bootstrap, sandbox.url, redirect, client_secret,
                                lambda: secrets.token_urlsafe(32))
        if on_settings is not None:
            on_settings(settings)
        # the platform's topics exist before serve reads them (as they do in production)
        ensure_topics(settings.kafka, platform_topics(settings, TOPIC_PARTITIONS))
        running.enter_context(serving(settings, sock))
        say(f"connector serve at {serve_url} in app mode (redirect URL {redirect})")
        link_secret = settings.installs.install_link_secret
        assert link_secret is not None  # app mode's settings have it (validated)
        signer = LinkSigner(link_secret.get_secret_value())
        with httpx.Client(follow_redirects=False, timeout=HTTP_GUARD) as http:
            for account, hub_id in zip(accounts, hub_ids, strict=True):
                install_through_flow(http, serve_url, signer, account, hub_id)
                say(f"{account} installed the app into HubSpot account {hub_id} (signed install "
                    "link -> HubSpot's authorize page -> serve's callback -> registry topic)")
        samples = [generate(SampleSpec(seed=spec.seed + i, account_id=account,
                                       webinars=spec.webinars, people_per_webinar=spec.people,
                                       known_contact_ratio=0.0))
                   for i, account in enumerate(accounts)]
        publish_to_platform(settings, _merged(samples), create_topics=False)
        predicted = [_prediction(sample) for sample in samples]
        published = sum(len(s.activities) for s in samples)
        say(f"published {published} activities: {spec.webinars} webinar(s) x {spec.people} "
            f"people for each of {spec.accounts} accounts; running normalizer and sink in app "
            "mode ...")
        outcomes: list[AccountOutcome] = []

        def read_back() -> bool:
            outcomes[:] = [_outcome(sandbox.url, account, hub_id, sample, want)
                           for account, hub_id, sample, want
                           in zip(accounts, hub_ids, samples, predicted, strict=True)]
            return all(o.matched for o in outcomes)

        run_pipeline_until(settings, read_back, spec.timeout)
        read_back()
        _, default_state = hubspot_view(sandbox.url, set(), hub_id=default_hub)
        elapsed = time.monotonic() - started
        by_account, unattributed = _dead_letters(settings)
        outcomes = [AccountOutcome(o.account, o.hub_id, o.sample, o.predicted, o.shown, o.state,
                                   by_account.get(o.account, Counter())) for o in outcomes]
        yield AccountsResult(
            settings, outcomes, default_hub,
            sorted(f"{e['external_account_id']}/{e['external_event_id']}"
                   for e in default_state["events"]),
            unattributed, elapsed)


def _merged(samples: list[Sample]) -> Sample:
    """The samples as one, published together as the platform publishes every account's."""
    return Sample(webinars=[w for s in samples for w in s.webinars],
                  activities=[a for s in samples for a in s.activities])


def _prediction(sample: Sample) -> View:
    activities = [r for k, r in sample.publish_order() if k == "activity"]
    final = {w["webinarId"]: w for w in sample.webinars if w["status"] == "ENDED"}
    return expected_outcome(activities, final)


def _outcome(url: str, account: str, hub_id: int, sample: Sample, predicted: View
             ) -> AccountOutcome:
    shown, state = hubspot_view(url, set(), hub_id=hub_id)
    return AccountOutcome(account, hub_id, sample, predicted, shown, state)


def _dead_letters(settings: Settings) -> tuple[dict[str, Counter[str]], Counter[str]]:
    """Dead letters of every topic counted by reason: per platform account, and those without
    one."""
    by_account: dict[str, Counter[str]] = {}
    unattributed: Counter[str] = Counter()
    for _, counted in dead_letters_by_account(settings):
        for (account, reason), n in counted.items():
            target = unattributed if account == "?" else by_account.setdefault(account, Counter())
            target[reason] += n
    return by_account, unattributed
