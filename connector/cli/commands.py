"""Attaches every sub-command to the `connector` group."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add each sub-command module's command to `group`."""
    from connector.cli.accounts import accounts_group
    from connector.cli.check_config import check_config_command
    from connector.cli.demo import demo_command
    from connector.cli.dlq import dlq_group
    from connector.cli.hubspot import hubspot_group
    from connector.cli.produce_sample import produce_sample_command
    from connector.cli.replay import replay_group
    from connector.cli.run import run_command
    from connector.cli.sandbox import sandbox_command
    from connector.cli.serve import serve_command

    for command in (accounts_group, check_config_command, demo_command, dlq_group, hubspot_group,
                    produce_sample_command, replay_group, run_command, sandbox_command,
                    serve_command):
        group.add_command(command)
