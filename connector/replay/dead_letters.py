"""A backfill's own dead letters: the temporary normalizer's rejects, kept in the live topics.

The temporary normalizer dead-letters what it cannot use (an undecodable record, a person
without a contact identifier) to dead-letter topics of the copies, which are deleted with them.
A backfill for a customer that never ran through the live pipeline would leave those rejects
nowhere. So before the cleanup each one is produced to the live topic's dead-letter topic
(`<activity>.dlq`, `<webinars>.dlq`) named after the original record: its source topic is the
live topic and its offset the original one (the copy carried it in
``connector.backfill.origin.offset``), and ``connector.errors.backfill`` names the backfill, so
an operator tells them from the live pipeline's and `connector dlq --backfill ID` selects
them. With --account, only the chosen accounts' rejects are kept (found as `connector dlq
--account` finds them); a reject whose account cannot be told is kept too, rather than lost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from connector.config import Settings
from connector.dlq.account import account_lookup
from connector.dlq.envelope import from_backfill
from connector.dlq.record import DeadLetterRecord
from connector.kafka import TopicSpec, clients, ensure_topics
from connector.kafka.clients import KafkaException
from connector.kafka.protocols import ProducerClient
from connector.replay.backfill_plan import Names
from connector.replay.cluster import Cluster, read_ranges
from connector.replay.errors import ReplayError

AccountOf = Callable[[DeadLetterRecord], str | None]


def keep_dead_letters(settings: Settings, cluster: Cluster, names: Names,
                      accounts: tuple[str, ...], check_stop: Callable[[], None]) -> int:
    """Produce the temporary normalizer's dead letters to the live dead-letter topics (see the
    module docstring); how many were kept."""
    topics = settings.topics
    live_of = {topics.dlq_for(names.activity): topics.activity,
               topics.dlq_for(names.webinars): topics.webinars}
    existing = cluster.topics()
    present = [name for name in live_of if name in existing]
    if not present:
        return 0
    tps = [tp for name in present for tp in cluster.resolve_all(name)]
    ranges = dict(cluster.watermarks(tps, uncommitted=True))
    ensure_topics(settings.kafka, [TopicSpec(topics.dlq_for(live_of[name]), existing[name])
                                   for name in present])
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    producer: ProducerClient = clients.producer(settings.kafka, {"linger.ms": 20})
    kept = 0
    try:
        with _accounts(settings, accounts) as account_of:
            for message in read_ranges(settings.kafka, ranges):
                check_stop()
                source = live_of[message.topic()]
                record = DeadLetterRecord(
                    topics.dlq_for(source), message.partition(), message.offset(),
                    message.key(), message.value(),
                    from_backfill(list(message.headers() or []), backfill_id=names.backfill_id,
                                  topic=source))
                if account_of is not None and account_of(record) not in (*accounts, None):
                    continue  # another account's: this backfill sent it nothing
                clients.produce_waiting(producer, topic=record.topic, key=record.key,
                                        value=record.value, headers=record.headers,
                                        on_delivery=delivered)
                producer.poll(0)
                kept += 1
        if producer.flush(60) or failures:
            raise ReplayError(f"keeping the backfill's dead letters failed: "
                              f"{failures[:3] or 'timed out'}")
    except KafkaException as exc:
        raise ReplayError(f"keeping the backfill's dead letters failed: {exc.args[0]}") from exc
    return kept


@contextlib.contextmanager
def _accounts(settings: Settings, accounts: tuple[str, ...]) -> Iterator[AccountOf | None]:
    """The account resolver when the backfill is for some accounts only (None: all)."""
    if not accounts:
        yield None
        return
    with account_lookup(settings) as resolve:
        yield resolve
