"""What `connector dlq` does: summarize topics, select dead letters, plan and execute a redrive.

The command (connector.cli.dlq) parses options, reads the clock and prints; everything between
is here, over the Kafka access of connector.dlq.topic and the pure decisions of the other modules
(filters, progress, redrive planning, inspection).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from connector.config import Settings
from connector.dlq.errors import DeadLetterError, RedriveError
from connector.dlq.filters import RecordFilter
from connector.dlq.inspect import TopicSummary, ValueRenderer, dlq_source, record_json, summarize
from connector.dlq.progress import (
    PartitionProgress,
    ProgressError,
    RedriveProgress,
    redrive_group,
)
from connector.dlq.record import DeadLetterRecord
from connector.dlq.redrive import Pacer, Redrive, SendResult, advance_progress, plan, send
from connector.dlq.topic import DeadLetterTopics
from connector.kafka import clients
from connector.serde.topic import registry_from

Position = tuple[int, int]

#: The redrive producer: idempotent (the role's), every replica acknowledges, small batches, and
#: librdkafka's own log quiet below errors (the command reports what failed).
REDRIVE_PRODUCER = {"acks": "all", "linger.ms": 5, "log_level": 2}


def redriven_positions(progress: RedriveProgress,
                       records: Iterable[DeadLetterRecord]) -> set[Position]:
    """(partition, offset) of the records an earlier redrive sent."""
    return {(r.partition, r.offset) for r in records
            if progress.get(r.partition, PartitionProgress()).is_redriven(r.offset)}


# --------------------------------------------------------------------------- list


def summaries(topics: DeadLetterTopics) -> list[TopicSummary]:
    """Every dead-letter topic that exists, counted, with what is still pending."""
    out = []
    for topic in topics.discover():
        records = topics.read(topic)
        progress = topics.load_progress(topic)
        out.append(summarize(topic, records, redriven_positions(progress, records)))
    return out


# --------------------------------------------------------------------------- show


@dataclass(frozen=True)
class Shown:
    """The dead letters `show` prints, out of how many it read, and which were redriven."""

    records: list[DeadLetterRecord]
    read: int
    redriven: set[Position]


def select_shown(topics: DeadLetterTopics, topic: str, selection: RecordFilter, *,
                 pending: bool, limit: int | None) -> Shown:
    """The records of `topic` the selection matches (`pending`: only those not yet redriven)."""
    topics.require(topic)
    progress = topics.load_progress(topic)
    start = {p: pp.watermark for p, pp in progress.items()} if pending else None
    records = topics.read(topic, start)
    redriven = redriven_positions(progress, records)
    chosen = [r for r in records if selection.matches(r)
              and not (pending and (r.partition, r.offset) in redriven)][:limit]
    return Shown(chosen, len(records), redriven)


def rendered(settings: Settings, topic: str, shown: Shown) -> Iterator[dict[str, Any]]:
    """Each shown record as JSON, its value decoded with its source topic's format."""
    registry = registry_from(settings.serde)
    try:
        renderer = ValueRenderer.from_settings(settings, registry)
        for record in shown.records:
            source = record.source_topic or dlq_source(topic, settings)
            yield record_json(record, renderer.render(record, source), source_topic=source,
                              redriven=(record.partition, record.offset) in shown.redriven)
    finally:
        if registry is not None:
            registry.close()


# --------------------------------------------------------------------------- redrive


@dataclass(frozen=True)
class RedriveRequest:
    """What the operator asked to redrive."""

    topic: str
    selection: RecordFilter
    to: str | None = None
    limit: int | None = None
    from_start: bool = False


@dataclass
class RedrivePlan:
    """The redrives chosen, and what the progress was and will be."""

    request: RedriveRequest
    scanned: list[DeadLetterRecord]
    progress: RedriveProgress
    redrives: list[Redrive]
    skipped: int
    summary: dict[str, Any] = field(default_factory=dict)


def choose(records: Iterable[DeadLetterRecord], progress: RedriveProgress,
           selection: RecordFilter, *, from_start: bool,
           limit: int | None) -> tuple[list[DeadLetterRecord], int]:
    """The selected records (at most `limit`), and how many were skipped as already redriven."""
    skipped = 0
    chosen: list[DeadLetterRecord] = []
    for record in records:
        if not selection.matches(record):
            continue
        done = progress.get(record.partition, PartitionProgress()).is_redriven(record.offset)
        if done and not from_start:
            skipped += 1
            continue
        chosen.append(record)
    return chosen[:limit], skipped


def plan_redrive(topics: DeadLetterTopics, request: RedriveRequest, *, now_ms: int,
                 dry_run: bool) -> RedrivePlan:
    """Read the topic and its progress and plan the redrives; sends nothing.

    Raises RedriveError when a target is missing or the progress could not be recorded."""
    topic, to = request.topic, request.to
    topics.require(topic)
    if to is not None and not topics.exists(to):
        raise RedriveError(f"the --to topic {to} does not exist; nothing was sent")
    progress = topics.load_progress(topic)
    # The whole topic, not from the watermark: dead-letter topics are small, and the summary can
    # then say how many selected records earlier redrives already sent.
    records = topics.read(topic)
    chosen, skipped = choose(records, progress, request.selection,
                             from_start=request.from_start, limit=request.limit)
    redrives = plan(chosen, to=to, partitions=topics.partitions(), now_ms=now_ms)
    try:
        for partition_progress in advance_progress(progress, redrives, records).values():
            partition_progress.check()
    except ProgressError as exc:
        raise RedriveError(f"{exc}; nothing was sent") from None
    result = RedrivePlan(request, records, progress, redrives, skipped)
    result.summary = {
        "topic": topic,
        "mode": "dry-run" if dry_run else "execute",
        "group": redrive_group(topic),
        "from_start": request.from_start,
        "selected": len(redrives),
        "skipped_redriven": skipped,
        "sent": 0,
        "failed": 0,
        "targets": dict(Counter(r.target for r in redrives)),
        "records": [r.to_json() for r in redrives],
        "errors": [],
    }
    return result


def execute_redrive(settings: Settings, topics: DeadLetterTopics, redrive: RedrivePlan, *,
                    rate: float | None, clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], None] = time.sleep) -> SendResult:
    """Send the plan at most `rate` per second (None: unpaced), then record what was delivered.

    Updates the plan's summary. Raises RedriveError when no producer can be made or the progress
    cannot be committed; records that were not delivered are in the result (see `failure`)."""
    try:
        producer = clients.producer(settings.kafka, REDRIVE_PRODUCER)
    except clients.KafkaException as exc:
        raise RedriveError(f"cannot create a Kafka producer: {exc.args[0]}; nothing was sent"
                           ) from exc
    result = send(producer, redrive.redrives, Pacer(rate, clock, sleep))
    topic = redrive.request.topic
    if result.delivered:
        try:
            topics.commit_progress(topic, advance_progress(redrive.progress, result.delivered,
                                                           redrive.scanned))
        except DeadLetterError as exc:
            raise RedriveError(f"{len(result.delivered)} record(s) were sent, but {exc}; a later "
                               "redrive would send them again unless filtered out") from exc
    redrive.summary.update(sent=len(result.delivered), failed=result.failed,
                           errors=result.errors,
                           targets=dict(Counter(r.target for r in result.delivered)))
    return result


def failure(redrive: RedrivePlan, result: SendResult) -> RedriveError | None:
    """The error to exit with when some records were not delivered."""
    if not result.errors:
        return None
    return RedriveError(f"{result.failed} of {len(redrive.redrives)} record(s) were not delivered "
                        f"(first: {result.errors[0]}); the {len(result.delivered)} delivered "
                        f"are recorded in group {redrive_group(redrive.request.topic)}")
