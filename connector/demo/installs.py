"""Customers installing the app, as their browsers do it: for the demo, the end-to-end tests and
the multi-account bench.

:func:`serving` runs `connector serve` (the install flow's routes: app mode) in a thread on a
socket bound before the settings were made, since the redirect URL HubSpot must know names its
port. :func:`install_through_flow` follows an install link the platform signed to the sandbox's
authorize page, approves there as one HubSpot account and opens the OAuth callback: serve
exchanges the code and writes the install to the registry topic.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import httpx

from connector.asgi_server import bind_socket
from connector.config import Settings
from connector.errors import ConnectorError
from connector.installs.links import LinkSigner
from connector.serve import build_serve, run_serve

#: The callback path `connector serve` answers in app mode.
CALLBACK_PATH = "/hubspot/oauth/callback"
#: Longest wait for serve to stop: a guard, never a timing.
STOP_SECONDS = 30.0


class InstallFailed(ConnectorError, RuntimeError):
    """A step of the install flow did not answer as a successful install does (a
    :class:`ConnectorError`: the commands report it as one line)."""


def local_socket() -> tuple[socket.socket, str]:
    """A socket bound on loopback and the base URL serve answers on (``localhost``: HubSpot
    accepts no IP host in a redirect URL)."""
    sock = bind_socket("127.0.0.1", 0)
    return sock, f"http://localhost:{sock.getsockname()[1]}"


def redirect_url(base_url: str) -> str:
    """The OAuth redirect URL serve answers at ``base_url``."""
    return f"{base_url}{CALLBACK_PATH}"


@contextlib.contextmanager
def serving(settings: Settings, sock: socket.socket) -> Iterator[None]:
    """`connector serve` with ``settings`` on ``sock`` until the block ends; a failure of the
    server is raised here, not lost in its thread."""
    stop = threading.Event()
    served = build_serve(settings, stop)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            run_serve(served, sock, stop)
        except BaseException as exc:  # raised below, in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="serve-install-flow", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(STOP_SECONDS)
        sock.close()
    if thread.is_alive():
        raise InstallFailed("connector serve did not stop")
    if failure:
        raise failure[0]


def authorize(http: httpx.Client, serve_url: str, link: str, hub_id: int, *,
              decline: bool = False) -> str:
    """Open the install ``link`` (relative to ``serve_url``'s install path) and approve, or
    decline, on HubSpot's authorize page as account ``hub_id``: the callback URL HubSpot sends
    the browser to."""
    start = http.get(link)
    if start.status_code != 302:
        raise InstallFailed(f"install link answered {start.status_code}: {start.text[:200]}")
    extra = f"&hub_id={hub_id}" + ("&decline=1" if decline else "")
    approved = http.get(start.headers["location"] + extra)
    if approved.status_code != 302:
        raise InstallFailed(f"authorize page answered {approved.status_code}: "
                            f"{approved.text[:200]}")
    callback: str = approved.headers["location"]
    if not callback.startswith(serve_url):
        raise InstallFailed(f"HubSpot redirected to {callback!r}, not to serve at {serve_url}")
    return callback


def install_through_flow(http: httpx.Client, serve_url: str, signer: LinkSigner, account: str,
                         hub_id: int) -> str:
    """Install the app for platform ``account`` into HubSpot account ``hub_id`` through the
    real HTTP flow; the page serve answered. ``http`` must not follow redirects."""
    link = signer.sign(account, ttl_seconds=600).url(serve_url)
    page = http.get(authorize(http, serve_url, link, hub_id))
    if page.status_code != 200 or "HubSpot connected" not in page.text:
        raise InstallFailed(f"OAuth callback for {account} answered {page.status_code}: "
                            f"{page.text[:200]}")
    return page.text
