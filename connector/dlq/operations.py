"""What `connector dlq` does: summarize topics, select dead letters, plan and execute a redrive.

The command (connector.cli.dlq) parses options, reads the clock and prints; everything between
is here, over the Kafka access of connector.dlq.topic and the pure decisions of the other modules
(filters, progress, redrive planning, inspection).

An --account filter needs each candidate's platform account (connector.dlq.account): the
functions take `account_of` (from `account_lookup`) and count the candidates whose account
cannot be told (their value does not decode) as `undecodable`: never selected, always reported.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from connector.config import Settings
from connector.dlq.account import account_lookup as resolver_for
from connector.dlq.errors import DeadLetterError, RedriveError
from connector.dlq.filters import AccountOf, RecordFilter, Verdict
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


@contextlib.contextmanager
def account_lookup(settings: Settings, selection: RecordFilter) -> Iterator[AccountOf | None]:
    """How to find a dead letter's account when `selection` filters by account (else None)."""
    if not selection.accounts:
        yield None
        return
    with resolver_for(settings) as resolver:
        yield resolver


def select(records: Iterable[DeadLetterRecord], selection: RecordFilter,
           account_of: AccountOf | None) -> tuple[list[DeadLetterRecord], int]:
    """The records the selection takes, and how many it could not tell the account of."""
    chosen: list[DeadLetterRecord] = []
    undecodable = 0
    for record in records:
        verdict = selection.verdict(record, account_of)
        if verdict is Verdict.MATCH:
            chosen.append(record)
        elif verdict is Verdict.NO_ACCOUNT:
            undecodable += 1
    return chosen, undecodable


# --------------------------------------------------------------------------- list


def summaries(topics: DeadLetterTopics, selection: RecordFilter | None = None,
              account_of: AccountOf | None = None) -> list[TopicSummary]:
    """Every dead-letter topic that exists, counted, with what is still pending; with a
    `selection`, only the records it takes are counted (and the undecodable it skipped)."""
    out = []
    for topic in topics.discover():
        records = topics.read(topic)
        progress = topics.load_progress(topic)
        undecodable = None
        if selection is not None and not selection.is_everything:
            records, undecodable = select(records, selection, account_of)
        summary = summarize(topic, records, redriven_positions(progress, records))
        summary.undecodable = undecodable
        out.append(summary)
    return out


# --------------------------------------------------------------------------- show


@dataclass(frozen=True)
class Shown:
    """The dead letters `show` prints, out of how many it read, and which were redriven."""

    records: list[DeadLetterRecord]
    read: int
    redriven: set[Position]
    #: skipped by an --account filter: the value does not decode, so whose it is is unknown
    undecodable: int = 0


def select_shown(topics: DeadLetterTopics, topic: str, selection: RecordFilter, *,
                 pending: bool, limit: int | None, account_of: AccountOf | None = None) -> Shown:
    """The records of `topic` the selection matches (`pending`: only those not yet redriven)."""
    topics.require(topic)
    progress = topics.load_progress(topic)
    start = {p: pp.watermark for p, pp in progress.items()} if pending else None
    records = topics.read(topic, start)
    redriven = redriven_positions(progress, records)
    candidates = [r for r in records if not (pending and (r.partition, r.offset) in redriven)]
    chosen, undecodable = select(candidates, selection, account_of)
    return Shown(chosen[:limit], len(records), redriven, undecodable)


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
    undecodable: int = 0


@dataclass(frozen=True)
class Chosen:
    """What a redrive takes (at most its limit), and what it skipped: already redriven, or
    of unknown account under an --account filter."""

    records: list[DeadLetterRecord]
    skipped_redriven: int
    undecodable: int = 0


def choose(records: Iterable[DeadLetterRecord], progress: RedriveProgress,
           selection: RecordFilter, *, from_start: bool, limit: int | None,
           account_of: AccountOf | None = None) -> Chosen:
    """The selected records (at most `limit`), and how many were skipped as already redriven
    (of the selected) or as undecodable (an --account filter cannot tell whose they are)."""
    skipped = 0
    selected, undecodable = select(records, selection, account_of)
    chosen: list[DeadLetterRecord] = []
    for record in selected:
        done = progress.get(record.partition, PartitionProgress()).is_redriven(record.offset)
        if done and not from_start:
            skipped += 1
            continue
        chosen.append(record)
    return Chosen(chosen[:limit], skipped, undecodable)


def plan_redrive(topics: DeadLetterTopics, request: RedriveRequest, *, now_ms: int,
                 dry_run: bool, account_of: AccountOf | None = None) -> RedrivePlan:
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
    chosen = choose(records, progress, request.selection, from_start=request.from_start,
                    limit=request.limit, account_of=account_of)
    skipped = chosen.skipped_redriven
    redrives = plan(chosen.records, to=to, partitions=topics.partitions(), now_ms=now_ms)
    try:
        for partition_progress in advance_progress(progress, redrives, records).values():
            partition_progress.check()
    except ProgressError as exc:
        raise RedriveError(f"{exc}; nothing was sent") from None
    result = RedrivePlan(request, records, progress, redrives, skipped,
                         undecodable=chosen.undecodable)
    result.summary = {
        "topic": topic,
        "mode": "dry-run" if dry_run else "execute",
        "group": redrive_group(topic),
        "from_start": request.from_start,
        "accounts": sorted(request.selection.accounts),
        "selected": len(redrives),
        "skipped_redriven": skipped,
        "skipped_undecodable": chosen.undecodable,
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
