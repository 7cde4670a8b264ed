"""`connector produce-sample`: publish a realistic synthetic webinar to the platform's topics."""

from __future__ import annotations

import click

from connector.cli.common import reports_errors, settings_from
from connector.demo.publish import publish_to_platform
from connector.errors import ConnectorError
from connector.sample import SampleSpec, generate
from connector.serde.codec import Framing


@click.command("produce-sample")
@click.option("--framing", type=click.Choice([f.value for f in Framing]), default=None,
              help="Override both topics' configured framing.")
@click.option("--seed", default=7, show_default=True, help="Same seed, same records.")
@click.option("--webinars", default=1, show_default=True, type=click.IntRange(1))
@click.option("--people", default=200, show_default=True, type=click.IntRange(1),
              help="People per webinar.")
@click.option("--partitions", default=3, show_default=True, type=click.IntRange(1),
              help="Partitions for topics this command creates.")
@click.option("--create-topics/--no-create-topics", default=True, show_default=True)
@click.pass_context
@reports_errors
def produce_sample_command(ctx: click.Context, framing: str | None, seed: int, webinars: int,
                           people: int, partitions: int, create_topics: bool) -> None:
    """Publish synthetic webinars: registrations, cancellations and re-registrations,
    reconnects and second devices, guests without email, late and duplicate activity."""
    settings = settings_from(ctx)
    activity_framing = Framing(framing) if framing else settings.serde.activity_framing
    webinar_framing = Framing(framing) if framing else settings.serde.webinars_framing
    sample = generate(SampleSpec(seed=seed, webinars=webinars, people_per_webinar=people))
    try:
        counts = publish_to_platform(settings, sample, partitions=partitions,
                                     create_topics=create_topics,
                                     activity_framing=activity_framing,
                                     webinar_framing=webinar_framing)
    except RuntimeError as exc:
        raise ConnectorError(f"publishing failed: {exc}") from exc
    click.echo(f"published to {settings.topics.activity} ({activity_framing.value}) and "
               f"{settings.topics.webinars} ({webinar_framing.value}), seed={seed}:")
    for name, count in sorted(counts.items()):
        click.echo(f"  {name:<36} {count}")
