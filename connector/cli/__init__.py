"""The `connector` command: each sub-command parses its arguments and prints; the work is in the
packages (connector.runtime, connector.dlq, connector.replay, ...). The only place that reads the
settings from the environment."""

from __future__ import annotations

from pathlib import Path

import click

from connector import __version__
from connector.telemetry import configure_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="connector")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              envvar="CONNECTOR_CONFIG_FILE",
              help="TOML settings file (environment variables CONNECTOR_<SECTION>__<FIELD> "
                   "override it).")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def main(config_file: Path | None, log_level: str) -> None:
    """Carry a webinar platform's Kafka activity stream into HubSpot Marketing Events."""
    configure_logging(log_level)


def _register_commands() -> None:
    # Sub-commands live in their own modules; imported late so `main` exists when they attach.
    from connector.cli import commands

    commands.register(main)


_register_commands()
