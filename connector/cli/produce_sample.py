"""`connector produce-sample`: publish a realistic synthetic webinar to the platform's topics."""

from __future__ import annotations

import click

from connector.cli.common import reports_errors, settings_from
from connector.config import Settings
from connector.errors import ConnectorError
from connector.kafka import TopicSpec, clients, ensure_topics
from connector.sample import SampleSpec, generate
from connector.sample.publish import publish_sample
from connector.serde.codec import Framing
from connector.serde.topic import TopicCodecs

WEEK_MS = 7 * 24 * 3600 * 1000


def platform_topics(settings: Settings, partitions: int) -> list[TopicSpec]:
    """The platform's two topics with the cleanup policies its contract names."""
    return [
        TopicSpec(settings.topics.activity, partitions,
                  config={"cleanup.policy": "delete", "retention.ms": str(WEEK_MS)}),
        TopicSpec(settings.topics.webinars, partitions, config={"cleanup.policy": "compact"}),
    ]


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
    if create_topics:
        ensure_topics(settings.kafka, platform_topics(settings, partitions))
    codecs = TopicCodecs.from_settings(settings)
    activity_framing = Framing(framing) if framing else settings.serde.activity_framing
    webinar_framing = Framing(framing) if framing else settings.serde.webinars_framing
    activity_codec = codecs.codec(settings.topics.activity, activity_framing)
    webinar_codec = codecs.codec(settings.topics.webinars, webinar_framing)
    sample = generate(SampleSpec(seed=seed, webinars=webinars, people_per_webinar=people))
    producer = clients.producer(settings.kafka, {"linger.ms": 20})
    try:
        counts = publish_sample(producer, sample, activity_topic=settings.topics.activity,
                                webinar_topic=settings.topics.webinars,
                                activity_encoder=activity_codec, webinar_encoder=webinar_codec)
    except RuntimeError as exc:
        raise ConnectorError(f"publishing failed: {exc}") from exc
    click.echo(f"published to {settings.topics.activity} ({activity_framing.value}) and "
               f"{settings.topics.webinars} ({webinar_framing.value}), seed={seed}:")
    for name, count in sorted(counts.items()):
        click.echo(f"  {name:<36} {count}")
