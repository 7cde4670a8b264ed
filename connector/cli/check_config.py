"""`connector check-config`: the effective settings (secrets masked) and whether Kafka answers."""

from __future__ import annotations

import json
import sys

import click

from connector import native
from connector.cli.common import EXIT_FAILURE, reports_errors, settings_from
from connector.kafka import ping
from connector.kafka.admin import KafkaUnavailableError
from connector.serde.catalog import SchemaCatalog


@click.command("check-config")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for Kafka.")
@click.option("--skip-kafka", is_flag=True, help="Only validate and print the settings.")
@click.pass_context
@reports_errors
def check_config_command(ctx: click.Context, timeout: float, skip_kafka: bool) -> None:
    """Print the effective configuration (secrets masked) and check that Kafka answers."""
    settings = settings_from(ctx)
    click.echo(json.dumps(settings.masked(), indent=2, default=str))
    catalog = SchemaCatalog.from_directory(settings.serde.schemas_dir)
    click.echo(f"schemas: {', '.join(catalog.reader_names)}")
    click.echo(native.status().describe())
    if skip_kafka:
        return
    try:
        info = ping(settings.kafka, timeout=timeout)
    except KafkaUnavailableError as exc:
        click.echo(f"kafka: NOT OK: {exc}", err=True)
        sys.exit(EXIT_FAILURE)
    click.echo(f"kafka: OK cluster_id={info['cluster_id']} brokers={','.join(info['brokers'])} "
               f"topics={info['topics']}")
