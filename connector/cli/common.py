"""What every sub-command shares: settings from the environment, and errors as clean exits."""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click
from pydantic import SecretStr

from connector import stopping
from connector.config import Settings, load_settings
from connector.errors import ConfigError, ConnectorError
from connector.telemetry import configure_logging, register_secret

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CONFIG = 2  # the same code click uses for usage errors: the operator must change something
EXIT_FAILURE = 1


def settings_from(ctx: click.Context) -> Settings:
    """Settings for this invocation: defaults < --config file < CONNECTOR_* environment.

    Every secret is registered with the log filter before anything can log it.
    """
    config_file: Path | None = ctx.find_root().params.get("config_file")
    settings = load_settings(os.environ, config_file)
    protect_secrets(settings)
    if settings.telemetry.log_json:
        configure_logging(ctx.find_root().params.get("log_level") or "INFO", json=True)
    return settings


def secret_settings(settings: Settings) -> list[SecretStr | None]:
    """Every secret setting, set or not (a new secret setting belongs here)."""
    return [settings.hubspot.access_token, settings.hubspot.client_secret,
            settings.kafka.sasl_password, settings.serde.schema_registry_basic_auth,
            settings.telemetry.otlp_headers, settings.installs.encryption_keys,
            settings.installs.state_secret, settings.installs.install_link_secret]


def protect_secrets(settings: Settings) -> None:
    """Register every configured secret with the logging filter (masked wherever it appears).

    :func:`settings_from` calls it for every command, before anything can log; so does the demo
    for the settings it makes. Besides each whole value: the password of ``user:password`` forms
    and each key of a comma-separated key list (``installs.encryption_keys``).
    """
    for secret in secret_settings(settings):
        if secret is not None:
            value = secret.get_secret_value()
            register_secret(value)
            register_secret(value.partition(":")[2])  # user:password forms
            for part in value.split(","):  # key lists
                register_secret(part.strip())


def reports_errors(func: F) -> F:
    """Turn the connector's own errors into one clear line on stderr and a distinct exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_CONFIG)
        except ConnectorError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILURE)

    return wrapper  # type: ignore[return-value]


def install_stop_handlers(stop: threading.Event) -> None:
    """SIGTERM / SIGINT set ``stop`` for the rest of the process: the workers finish their
    transaction or batch and exit. A stop asked for while the process was still importing
    (:mod:`connector.stopping`) sets it at once."""
    log = logging.getLogger("connector.run")

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping signal=%s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    if stopping.STOP.is_set():  # asked to stop while the process was still importing
        stop.set()
