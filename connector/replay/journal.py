"""A backfill's journal: its plan and how far it got, in a compacted topic of its own
(``<commands>.backfill-<id>-journal``, one partition, deleted with the other temporary topics).

A backfill killed without a chance to clean up (SIGKILL, a lost machine) leaves its temporary
topics and groups behind, and `connector replay backfill --resume <id>` reads the journal:

* ``plan``: the offset ranges, accounts and topics of the run (written first);
* ``sending``: the planned commands are written, with the planned topic's end offsets. From
  here the temporary sink group's committed offsets are the progress: a resumed backfill's sink
  starts from them, so what was committed is not sent again. What was sent but not committed
  (requests in flight, and everything after the oldest unfinished command of a partition, e.g.
  commands parked for a missing event) is sent again, which HubSpot's idempotent writes absorb;
* ``kept``: the normalizer's rejects are in the live dead-letter topics (a resume before it
  keeps them again).

Before ``sending`` nothing reached HubSpot, so a resume runs the same plan again from the start
(under a new id; the old id's leftovers are deleted).
"""

from __future__ import annotations

import json
from typing import Any

from connector.kafka import clients
from connector.kafka.clients import KafkaException
from connector.replay.cluster import Cluster, read_ranges
from connector.replay.errors import ReplayError

__all__ = ["KEPT", "PLAN", "SENDING", "read_journal", "write_entry"]

PLAN = "plan"
SENDING = "sending"
KEPT = "kept"


def write_entry(source: clients.Source, topic: str, step: str, value: dict[str, Any]) -> None:
    """Record ``step`` (delivered before this returns)."""
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    try:
        producer = clients.producer(source)
        producer.produce(topic, key=step.encode(), value=json.dumps(value).encode(),
                         on_delivery=delivered)
        if producer.flush(30) or failures:
            raise ReplayError(f"writing the backfill's journal ({step}) failed: "
                              f"{failures[:1] or 'timed out'}")
    except KafkaException as exc:
        raise ReplayError(f"writing the backfill's journal ({step}) failed: "
                          f"{exc.args[0]}") from exc


def read_journal(source: clients.Source, cluster: Cluster,
                 topic: str) -> dict[str, dict[str, Any]]:
    """The latest entry of each step, read to the journal's end ({} when it does not exist;
    ReplayError when the end cannot be reached: a short read would be misread as a backfill
    that had not started sending)."""
    if topic not in cluster.topics():
        return {}
    tps = cluster.resolve_all(topic)
    marks = cluster.watermarks(tps, uncommitted=True)
    entries: dict[str, dict[str, Any]] = {}
    for message in read_ranges(source, {tp: (0, marks[tp][1]) for tp in tps}, timeout=30):
        key, value = message.key(), message.value()
        if key is not None and value is not None:
            entries[key.decode()] = json.loads(value)
    return entries
