"""The install flow of app mode: a customer connects their HubSpot account to a platform account.

Two routes (``CONNECTOR_HUBSPOT__MODE=app`` only; reference ``hubspot-oauth-and-public-apps.md``
§1-§2):

* ``GET /hubspot/install?account=<platform account>&expires=<epoch s>&signature=<hex>`` — a
  link the webinar platform signed (:class:`~connector.installs.links.LinkSigner`: HMAC-SHA256
  under ``CONNECTOR_INSTALLS__INSTALL_LINK_SECRET`` over ``install\\n<account>\\n<expires>``).
  A missing, blank, over-long (> 256 characters) or unprintable account: **400** page. No
  ``expires`` or ``signature``, a signature that does not verify, or an expired link: **403**
  page ("invalid or expired; ask your webinar platform for a new one"), logged as
  ``serve.install_link_rejected account=... reason=...``, nothing else done. A valid link:
  **302** to HubSpot's authorize page for the app (``OAuthClient.authorize_url``) with a signed,
  expiring ``state`` naming the account (:class:`~connector.installs.state.StateSigner`).
* ``GET <path of CONNECTOR_HUBSPOT__REDIRECT_URL>?code=&state=`` (default
  ``/hubspot/oauth/callback``) — where HubSpot sends the installer back. In this order:

  ========================================  ======  =========================================
  case                                      status  what happens
  ========================================  ======  =========================================
  ``error=access_denied`` (declined)        200     "install cancelled" page, nothing written
  any other ``error=``                      400     HubSpot's error code shown, nothing written
  ``state`` malformed, forged or expired    400     "link expired or invalid, start again"
  no ``code``                               400     nothing written
  code refused (used, expired, unknown)     400     ``AuthCodeRejected``: "start again"
  the app's client id/secret refused        500     ``OAuthClientRejected``, logged at ERROR
  HubSpot away, 5xx, 429, odd answer        502     "try again"
  the registry write not confirmed          503     ``InstallError``, logged at ERROR
  installed                                 200     account, hub id, scopes; missing ones named
  ========================================  ======  =========================================

  On success the install (:meth:`Install.from_grant`) is written to the registry topic and
  confirmed before the page answers. An install whose grant lacks a required scope
  (``crm.objects.marketing_events.write``) **is written all the same**: HubSpot has the app
  installed either way, the sink dead-letters that account's commands with
  ``hubspot-missing-scopes`` (redrivable after a re-install), and the page names the missing
  scopes so the installer can re-install granting them. A second install of a platform account
  replaces the first.

Pages are small escaped HTML (:mod:`.page`), never holding a token, code or state; every outcome
is logged as ``serve.install_* account=...`` (never a token, code or state). The token exchange
and the Kafka write block, so they run in a worker thread (``run_in_threadpool``), never on the
event loop. In private-app mode :func:`disabled_routes` answers both paths **404** with a page
saying the flow is off.

Only the platform, which knows who its signed-in customers are, can issue an install link, so
nobody can connect their HubSpot account to a platform account they were not given a link for.
A link works until it expires, for whoever holds it: hand it to that account's owner only
(README, "HubSpot app setup"). The "start again" links on the callback's pages are signed by
serve itself, for the account whose ``state`` it has just verified, valid
``CONNECTOR_INSTALLS__STATE_TTL_SECONDS``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from connector.clock import Clock
from connector.config import Settings
from connector.errors import ConfigError
from connector.hubspot.errors import (
    AuthCodeRejected,
    HubSpotError,
    OAuthClientRejected,
    is_retriable,
)
from connector.hubspot.oauth import WRITE_SCOPE, TokenGrant
from connector.installs.errors import InstallError, InstallWriteFailed, StateRejected
from connector.installs.links import INSTALL_PATH, LinkRejected, LinkSigner
from connector.installs.model import Install
from connector.installs.registry import InstallWriter, cipher_from
from connector.installs.state import StateSigner
from connector.installs.tokens import InstallStore, oauth_client_from
from connector.installs.topic import InstallCodec
from connector.kafka.clients import KafkaException
from connector.serve.page import PAGE_HEADERS, page

log = logging.getLogger("connector.serve")

DEFAULT_CALLBACK_PATH = "/hubspot/oauth/callback"
#: Paths of serve's other routes: the callback may not take them.
RESERVED_PATHS = ("/healthz", "/readyz", "/metrics", INSTALL_PATH)
MAX_ACCOUNT_LENGTH = 256
#: HubSpot's OAuth error codes are words; anything else is not shown back.
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DECLINED = "access_denied"


class InstallOAuth(Protocol):
    """What the flow needs of an :class:`~connector.hubspot.oauth.OAuthClient`."""

    def authorize_url(self, state: str) -> str: ...

    def exchange_code(self, code: str) -> TokenGrant: ...


class Closeable(Protocol):
    """Something the flow closes on shutdown."""

    def close(self) -> None: ...


def callback_path(redirect_url: str | None, public_url: str | None = None) -> str:
    """serve's route for the OAuth callback: the path of ``redirect_url`` (as registered in
    HubSpot), less ``public_url``'s path prefix when the redirect URL is under it (a proxy in
    front strips the prefix); :data:`DEFAULT_CALLBACK_PATH` without a redirect URL."""
    if not redirect_url:
        return DEFAULT_CALLBACK_PATH
    redirect = urlsplit(redirect_url)
    path = redirect.path or "/"
    if public_url:
        public = urlsplit(public_url)
        prefix = public.path.rstrip("/")
        if prefix and public.netloc == redirect.netloc and path.startswith(prefix + "/"):
            path = path[len(prefix):]
    if path in RESERVED_PATHS or path == "/" or path.startswith("/events/"):
        raise ConfigError(f"CONNECTOR_HUBSPOT__REDIRECT_URL's path {path!r} is taken by "
                          f"another route of `connector serve`: use {DEFAULT_CALLBACK_PATH}")
    return path


def account_problem(account: str) -> str | None:
    """Why ``account`` (stripped) cannot be installed, or None."""
    if not account:
        return "the link names no platform account: it needs ?account=<your account id>"
    if len(account) > MAX_ACCOUNT_LENGTH:
        return f"the platform account id is longer than {MAX_ACCOUNT_LENGTH} characters"
    if not account.isprintable():
        return "the platform account id holds characters that cannot be printed"
    return None


class LazyInstallWriter:
    """The registry's writer, created on the first install rather than at start-up: serve
    starts (and answers event details) while Kafka is away; a failed creation is retried by the
    next install. Thread-safe."""

    def __init__(self, factory: Callable[[], InstallWriter]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._writer: InstallWriter | None = None

    def put(self, install: Install) -> None:
        """Write ``install``, creating the writer (and the topic, if missing) first."""
        with self._lock:
            if self._writer is None:
                try:
                    self._writer = self._factory()
                except KafkaException as exc:
                    raise InstallWriteFailed(f"the install registry's producer could not be "
                                             f"created: {exc.args[0]}",
                                             account=install.platform_account) from exc
            writer = self._writer
        writer.put(install)

    def close(self) -> None:
        """Wait (bounded) for writes still in flight."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()


class InstallFlow:
    """The install and callback endpoints (the module's table); ``clock`` is epoch seconds."""

    def __init__(self, oauth: InstallOAuth, signer: StateSigner, store: InstallStore, *,
                 links: LinkSigner, callback_path: str = DEFAULT_CALLBACK_PATH,
                 required_scopes: Sequence[str] = (WRITE_SCOPE,),
                 public_url: str | None = None, clock: Clock = time.time,
                 resources: Sequence[Closeable] = ()) -> None:
        self._oauth = oauth
        self._signer = signer
        self._links = links
        self._store = store
        self.callback_path = callback_path
        self._required = tuple(required_scopes)
        self._public_url = public_url.rstrip("/") if public_url else None
        self._clock = clock
        self._resources = tuple(resources)

    def routes(self) -> list[BaseRoute]:
        """The two routes."""
        return [Route(INSTALL_PATH, self.install, methods=["GET"]),
                Route(self.callback_path, self.callback, methods=["GET"])]

    def close(self) -> None:
        """Close what the flow was handed (the OAuth client, the registry writer); once."""
        resources, self._resources = self._resources, ()
        for resource in resources:
            try:
                resource.close()
            except Exception as exc:  # one failing close must not skip the others
                log.warning("serve.install_close_failed resource=%s error=%s",
                            type(resource).__name__, exc)

    # ----------------------------------------------------------------- GET /hubspot/install

    async def install(self, request: Request) -> Response:
        """Check the platform's signature on the link, then redirect the installer to HubSpot's
        authorize page with a signed state."""
        params = request.query_params
        account = params.get("account", "").strip()
        problem = account_problem(account)
        if problem is not None:
            log.info("serve.install_bad_account length=%s", len(account))
            return page(400, "This install link is incomplete", [
                f"Connecting HubSpot needs the platform account to connect: {problem}.",
                "Open the install link your webinar platform gave you."])
        try:
            self._links.verify(account, params.get("expires"), params.get("signature"))
        except LinkRejected as exc:
            log.warning("serve.install_link_rejected account=%s reason=%s", account, exc.reason)
            return page(403, "This install link is invalid or expired", [
                "This install link is invalid or expired; ask for a new one from your webinar "
                "platform.",
                "Nothing was changed."])
        location = self._oauth.authorize_url(self._signer.sign(account))
        log.info("serve.install_started account=%s", account)
        return RedirectResponse(location, status_code=302, headers=PAGE_HEADERS)

    # ----------------------------------------------------------------- GET <callback>

    async def callback(self, request: Request) -> Response:
        """HubSpot's redirect back: verify, exchange, write, answer (the module's table)."""
        params = request.query_params
        state = params.get("state", "")
        error = params.get("error")
        if error is not None:
            return self._refused(request, error, state)
        try:
            account = self._signer.verify(state)
        except StateRejected as exc:
            log.warning("serve.install_state_rejected reason=%s", exc.reason)
            return page(400, "This install link expired or is invalid", [
                "The install could not be completed: the link it started from "
                + ("expired. " if exc.reason == "expired" else "is not valid. ")
                + "Nothing was changed.",
                "Start again from the install link your webinar platform gave you."])
        code = params.get("code", "")
        if not code:
            log.warning("serve.install_no_code account=%s", account)
            return page(400, "HubSpot sent no authorization code", [
                "The install could not be completed and nothing was changed."],
                link=("Start the install again", self._start_link(request, account)))
        try:
            grant = await run_in_threadpool(self._oauth.exchange_code, code)
            install = Install.from_grant(account, grant, now=self._clock())
        except AuthCodeRejected as exc:
            log.warning("serve.install_code_rejected account=%s status=%s category=%s",
                        account, exc.status, exc.category)
            return page(400, "This install link was already used or has expired", [
                "HubSpot refused the authorization code (each one works once, for a few "
                "minutes). Nothing was changed."],
                link=("Start the install again", self._start_link(request, account)))
        except OAuthClientRejected as exc:
            log.error("serve.install_client_rejected account=%s status=%s category=%s "
                      "hint=%s", account, exc.status, exc.category,
                      "check CONNECTOR_HUBSPOT__CLIENT_ID and CONNECTOR_HUBSPOT__CLIENT_SECRET")
            return page(500, "The connector's HubSpot app is misconfigured", [
                "HubSpot refused this connector's app credentials, so the install could not be "
                "completed. Nothing was changed.",
                "The connector's operator has been told; please try again once they have "
                "fixed it."])
        except (HubSpotError, ValueError) as exc:
            log.warning("serve.install_hubspot_failed account=%s retriable=%s error=%s",
                        account, is_retriable(exc), exc)
            return page(502, "HubSpot did not answer as expected", [
                "The install could not be completed because HubSpot is unavailable or "
                "answered unexpectedly. Nothing was changed."],
                link=("Try again", self._start_link(request, account)))
        try:
            await run_in_threadpool(self._store.put, install)
        except InstallError as exc:
            log.error("serve.install_write_failed account=%s hub_id=%s error=%s", account,
                      install.hub_id, exc)
            return page(503, "The install could not be saved", [
                f"HubSpot account {install.hub_id} approved the install, but the connector "
                "could not record it just now. Nothing was changed on our side.",
                "Please try again in a few minutes."],
                link=("Try again", self._start_link(request, account)))
        return self._installed(install)

    def _installed(self, install: Install) -> Response:
        missing = install.missing_scopes(self._required)
        account, hub_id = install.platform_account, install.hub_id
        if missing:
            log.warning("serve.install_missing_scopes account=%s hub_id=%s missing=%s",
                        account, hub_id, ",".join(missing))
        log.info("serve.installed account=%s hub_id=%s scopes=%s", account, hub_id,
                 ",".join(install.scopes))
        text = [f"Platform account {account} now sends its webinars to HubSpot account "
                f"{hub_id}."]
        if missing:
            text.append("But HubSpot did not grant every permission the connector needs, so "
                        "nothing will reach HubSpot until the app is installed again granting "
                        "these scopes:")
            return page(200, "HubSpot connected, with permissions missing", text,
                        items=missing)
        text.append("You can close this page.")
        return page(200, "HubSpot connected", text)

    def _refused(self, request: Request, error: str, state: str) -> Response:
        """HubSpot redirected back with ``error=`` (declined, or refused): nothing written."""
        try:
            account: str | None = self._signer.verify(state)
        except StateRejected:
            account = None
        shown = error if _ERROR_CODE.match(error) else "unknown"
        link = (("Start the install again", self._start_link(request, account))
                if account is not None else None)
        if error == DECLINED:
            log.info("serve.install_declined account=%s", account or "unknown")
            return page(200, "Install cancelled", [
                "The HubSpot app was not installed, and nothing was changed."], link=link)
        log.warning("serve.install_refused account=%s error=%s", account or "unknown", shown)
        return page(400, "HubSpot did not complete the install", [
            f"HubSpot answered with the error {shown}. Nothing was changed."], link=link)

    def _start_link(self, request: Request, account: str) -> str:
        """A fresh install link for ``account``, whose state was just verified (the module's
        docstring), valid as long as a state."""
        base = self._public_url if self._public_url is not None else request.scope.get(
            "root_path", "")
        return self._links.sign(account, self._signer.ttl_seconds).url(base)


def install_flow_from(settings: Settings, *, clock: Clock = time.time,
                      oauth: InstallOAuth | None = None,
                      store: InstallStore | None = None) -> InstallFlow:
    """The flow as ``settings`` (app mode) describe it: the link and state signers, the app's
    OAuth client and a :class:`LazyInstallWriter` on the registry topic (``oauth``/``store``
    override)."""
    signer = StateSigner.from_settings(settings, clock=clock)
    links = LinkSigner.from_settings(settings, clock=clock)
    path = callback_path(settings.hubspot.redirect_url, settings.serve.public_url)
    resources: list[Closeable] = []
    if oauth is None:
        client = oauth_client_from(settings, clock=clock)
        resources.append(client)
        oauth = client
    if store is None:
        codec = InstallCodec(cipher_from(settings))
        topic = settings.topics.installs

        def writer() -> InstallWriter:
            return InstallWriter.create(settings.kafka, topic, codec)

        lazy = LazyInstallWriter(writer)
        resources.append(lazy)
        store = lazy
    return InstallFlow(oauth, signer, store, links=links, callback_path=path,
                       public_url=settings.serve.public_url, clock=clock, resources=resources)


def disabled_routes(paths: Sequence[str] = (INSTALL_PATH, DEFAULT_CALLBACK_PATH)
                    ) -> list[BaseRoute]:
    """Private-app mode: the flow's paths answer 404, saying the flow is off."""

    async def off(_request: Request) -> Response:
        log.info("serve.install_flow_off")
        return page(404, "HubSpot installs are not enabled here", [
            "This connector runs in private-app mode: it writes to one HubSpot account with "
            "one token, so there is nothing to install.",
            "Its operator enables installs with CONNECTOR_HUBSPOT__MODE=app."])

    return [Route(path, off, methods=["GET"]) for path in paths]
