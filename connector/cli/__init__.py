"""The `connector` command. The only place that reads the environment and wires parts together."""

from __future__ import annotations

import click

from connector import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="connector")
def main() -> None:
    """Carry a webinar platform's Kafka activity stream into HubSpot Marketing Events."""


def _register_commands() -> None:
    # Sub-commands live in their own modules; imported here so `connector --help` lists them.
    from connector.cli import commands  # noqa: F401


_register_commands()
