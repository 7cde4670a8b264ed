"""What every sub-command shares: settings from the environment, and errors as clean exits."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from connector.config import Settings, load_settings
from connector.errors import ConfigError, ConnectorError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CONFIG = 2  # the same code click uses for usage errors: the operator must change something
EXIT_FAILURE = 1


def settings_from(ctx: click.Context) -> Settings:
    """Settings for this invocation: defaults < --config file < CONNECTOR_* environment."""
    config_file: Path | None = ctx.find_root().params.get("config_file")
    return load_settings(os.environ, config_file)


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


def configure_logging(level: str) -> None:
    """`event key=value` lines on stderr."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
