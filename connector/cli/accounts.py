"""`connector accounts`: the install registry — list, show, link, unlink, revoke, rotate-key —
and signed install links (install-link).

The work is in connector.installs.admin and connector.installs.links; this module parses
options, reads the environment (settings, and the private-app token of `link`), and prints.
Secrets are shown as fingerprints (``****abcd``) in text and JSON alike. Exit codes: 0 done; 1 a
failure (no such account, Kafka away, a record that cannot be read); 2 configuration or usage.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from connector.cli.common import reports_errors, settings_from
from connector.config import Settings
from connector.installs.admin import InstallAdmin, open_admin
from connector.installs.links import DEFAULT_TTL_SECONDS, LinkSigner
from connector.installs.model import Install, iso
from connector.telemetry import register_secret

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group("accounts")
def accounts_group() -> None:
    """The install registry: which HubSpot account each platform account writes to.

    In app mode (CONNECTOR_HUBSPOT__MODE=app) each platform account (HubSpot's
    externalAccountId) writes to the HubSpot account that installed the app, or to a
    private-app token linked here. The registry is the compacted topic connector.installs;
    its tokens are encrypted with CONNECTOR_INSTALLS__ENCRYPTION_KEYS. `install-link` makes
    the signed link a customer installs from, as the webinar platform does.
    """


@contextmanager
def _admin(ctx: click.Context, settings: Settings | None = None
           ) -> Iterator[tuple[Settings, InstallAdmin]]:
    settings = settings or settings_from(ctx)  # its secrets registered for the logs
    with open_admin(settings) as admin:
        yield settings, admin


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False))


def _describe(install: Install) -> list[str]:
    view = install.public()
    lines = [f"platform account  {install.platform_account}",
             f"kind              {install.kind}",
             f"hub id            {install.hub_id if install.hub_id is not None else '-'}",
             f"status            {install.status}"
             + (f" ({install.revoked_reason})" if install.revoked_reason else ""),
             f"scopes            {' '.join(install.scopes) or '-'}",
             f"access token      {view['accessToken'] or '-'}"
             + (f", expires {view['accessExpiresAt']}" if view["accessExpiresAt"] else ""),
             f"refresh token     {view['refreshToken'] or '-'}",
             f"installed         {view['installedAt']}",
             f"updated           {view['updatedAt']}"]
    return lines


# --------------------------------------------------------------------------- list / show


@accounts_group.command("list", short_help="Every install, with its HubSpot account and status.")
@json_option
@click.pass_context
@reports_errors
def list_command(ctx: click.Context, as_json: bool) -> None:
    """Every platform account in the registry: kind, hub id, status, scopes, token expiry."""
    with _admin(ctx) as (_settings, admin):
        listing = admin.list()
    if as_json:
        _emit_json({"installs": [i.public() for i in listing.installs],
                    "unreadable": [{"platformAccount": account, "reason": reason}
                                   for account, reason in sorted(listing.unreadable.items())]})
        return
    if not listing.installs and not listing.unreadable:
        click.echo("no installs")
        return
    rows = [("ACCOUNT", "KIND", "HUB", "STATUS", "SCOPES", "ACCESS EXPIRES")]
    rows += [(i.platform_account, i.kind, str(i.hub_id) if i.hub_id is not None else "-",
              i.status, str(len(i.scopes)), iso(i.access_expires_at) or "-")
             for i in listing.installs]
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                      strict=True)).rstrip())
    for account, reason in sorted(listing.unreadable.items()):
        click.echo(f"unreadable: {account}: {reason}")


@accounts_group.command("show", short_help="One install in detail (secrets masked).")
@click.argument("account")
@json_option
@click.pass_context
@reports_errors
def show_command(ctx: click.Context, account: str, as_json: bool) -> None:
    """The install of platform account ACCOUNT (tokens as fingerprints)."""
    with _admin(ctx) as (_settings, admin):
        install = admin.show(account)
    if as_json:
        _emit_json(install.public())
        return
    for line in _describe(install):
        click.echo(line)


# --------------------------------------------------------------------------- changes


@accounts_group.command("link", short_help="Link an account to a private-app token of its own.")
@click.argument("account")
@click.option("--private-app-token-env", "token_env", metavar="VAR",
              help="Read the token from environment variable VAR (default: ask for it, not "
                   "echoed). Never pass a token on the command line: it stays in the shell's "
                   "history.")
@click.option("--hub-id", type=click.IntRange(1), default=None,
              help="The HubSpot account id (portal id) of the token, when known.")
@click.option("--replace", is_flag=True, help="Replace an existing install of ACCOUNT.")
@json_option
@click.pass_context
@reports_errors
def link_command(ctx: click.Context, account: str, token_env: str | None, hub_id: int | None,
                 replace: bool, as_json: bool) -> None:
    """Link platform account ACCOUNT to a private-app token of the customer's own HubSpot
    account (its commands then use that token, under the sink's window_limit)."""
    settings = settings_from(ctx)  # a bad setting fails before anyone types a token
    if token_env is not None:
        token = os.environ.get(token_env, "")
        if not token.strip():
            raise click.UsageError(f"environment variable {token_env} is not set or empty", ctx)
    else:
        token = click.prompt("Private-app access token", hide_input=True, err=True)
    register_secret(token.strip())
    with _admin(ctx, settings) as (_settings, admin):
        install = admin.link_private_app(account, token, hub_id=hub_id, replace=replace)
    if as_json:
        _emit_json(install.public())
        return
    click.echo(f"linked {account} to private-app token {install.public()['accessToken']}")
    if settings.hubspot.mode != "app":
        click.echo("note: CONNECTOR_HUBSPOT__MODE is private-app: installs are used in app mode "
                   "only", err=True)


@accounts_group.command("unlink", short_help="Remove an account's install (a tombstone).")
@click.argument("account")
@json_option
@click.pass_context
@reports_errors
def unlink_command(ctx: click.Context, account: str, as_json: bool) -> None:
    """Remove the install of ACCOUNT from the registry: its commands are dead-lettered as
    no-hubspot-install until it installs again. HubSpot keeps the app installed until the
    customer uninstalls it."""
    with _admin(ctx) as (_settings, admin):
        admin.unlink(account)
    if as_json:
        _emit_json({"platformAccount": account, "unlinked": True})
        return
    click.echo(f"unlinked {account}")


@accounts_group.command("revoke", short_help="Mark an account's install revoked.")
@click.argument("account")
@click.option("--reason", default="revoked-by-operator", show_default=True,
              help="Recorded with the install.")
@json_option
@click.pass_context
@reports_errors
def revoke_command(ctx: click.Context, account: str, reason: str, as_json: bool) -> None:
    """Mark the install of ACCOUNT revoked: its commands are dead-lettered as
    hubspot-install-revoked until it installs again."""
    with _admin(ctx) as (_settings, admin):
        install = admin.revoke(account, reason)
    if as_json:
        _emit_json(install.public())
        return
    click.echo(f"revoked {account} ({install.revoked_reason})")


@accounts_group.command("rotate-key", short_help="Re-encrypt every install under the first key.")
@json_option
@click.pass_context
@reports_errors
def rotate_key_command(ctx: click.Context, as_json: bool) -> None:
    """Write every install whose tokens are not under the first key of
    CONNECTOR_INSTALLS__ENCRYPTION_KEYS again, under it.

    Rotating the key: (1) put the new key first in every instance's setting, the old one after
    it (NEW,OLD), and restart them; (2) run this command; (3) drop the old key (NEW) and
    restart. Make a key with: python -c 'from cryptography.fernet import Fernet;
    print(Fernet.generate_key().decode())'
    """
    with _admin(ctx) as (_settings, admin):
        report = admin.rotate_key()
    if as_json:
        _emit_json({"rewritten": report.rewritten, "current": report.current,
                    "unreadable": [{"platformAccount": account, "reason": reason}
                                   for account, reason in sorted(report.unreadable.items())]})
        return
    click.echo(f"rewrote {len(report.rewritten)} install(s) under the first key; "
               f"{len(report.current)} already under it")
    for account, reason in sorted(report.unreadable.items()):
        click.echo(f"unreadable (not rotated): {account}: {reason}")


# --------------------------------------------------------------------------- install links


def serve_base_url(settings: Settings) -> str:
    """Where customers reach `connector serve`: serve.public_url, else http://host:port."""
    if settings.serve.public_url:
        return settings.serve.public_url
    host = settings.serve.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}:{settings.serve.port}"


@accounts_group.command("install-link", short_help="A signed install link for an account.")
@click.argument("account")
@click.option("--ttl", "ttl_seconds", type=click.IntRange(1), default=DEFAULT_TTL_SECONDS,
              show_default=True, metavar="SECONDS", help="How long the link stays valid.")
@json_option
@click.pass_context
@reports_errors
def install_link_command(ctx: click.Context, account: str, ttl_seconds: int,
                         as_json: bool) -> None:
    """A link that installs the app for platform account ACCOUNT, signed with
    CONNECTOR_INSTALLS__INSTALL_LINK_SECRET as the webinar platform signs them (README, "HubSpot
    app setup"); on CONNECTOR_SERVE__PUBLIC_URL, else on http://<serve.host>:<serve.port>.

    Whoever opens the link before it expires connects their HubSpot account to ACCOUNT: give it
    to that account's owner only. Nothing is written; Kafka is not needed.
    """
    settings = settings_from(ctx)
    if account != account.strip() or not account or not account.isprintable():
        raise click.BadParameter("expected a printable account id without surrounding "
                                 "whitespace", ctx, param_hint="ACCOUNT")
    link = LinkSigner.from_settings(settings).sign(account, ttl_seconds)
    url = link.url(serve_base_url(settings))
    if as_json:
        _emit_json({"platformAccount": account, "url": url, "expires": link.expires,
                    "expiresAt": iso(link.expires)})
        return
    click.echo(url)
    click.echo(f"valid until {iso(link.expires)}", err=True)
    if settings.serve.public_url is None:
        click.echo("note: CONNECTOR_SERVE__PUBLIC_URL is not set: the link uses serve's own "
                   "address", err=True)
