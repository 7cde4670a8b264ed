"""Workers assembled from settings: the one place that turns `Settings` into a normalizer.

`connector run`, the demo, replay and the tests build a normalizer with `normalizer_worker` (or
run one with `run_normalizer`); the worker and its parts only ever see what they use.
"""

from __future__ import annotations

import threading

from connector.config import Settings
from connector.kafka.transaction import BoundedTransactions, TransactionBounds
from connector.normalize.collector import CollectorPolicy
from connector.normalize.rules import NormalizeRules, TimeWindow
from connector.runtime.normalizer import NormalizerParts, NormalizerWorker
from connector.runtime.normalizer_clients import ClusterWait, NormalizerClients
from connector.runtime.normalizer_commit import TransactionCommitter
from connector.runtime.normalizer_rebalance import RebalanceHandler
from connector.runtime.normalizer_records import RecordHandler
from connector.runtime.normalizer_state import Changelogs, PartitionStates
from connector.runtime.table import WebinarTable
from connector.serde.topic import TopicCodecs
from connector.telemetry import Telemetry
from connector.telemetry.progress import ProgressWatch

HOUR_MS = 3_600_000


def rules_from(settings: Settings) -> NormalizeRules:
    """The attendance rules as configured (``[normalizer]``)."""
    n = settings.normalizer
    return NormalizeRules(
        rejoin_grace_ms=n.rejoin_grace_seconds * 1000,
        ended_retention_ms=n.ended_retention_hours * HOUR_MS,
        window=TimeWindow(n.max_days_before_start, n.max_days_after_end),
    )


def normalizer_worker(settings: Settings, stop: threading.Event,
                      telemetry: Telemetry | None = None, *, freeze_state: bool = False,
                      progress: ProgressWatch | None = None) -> NormalizerWorker:
    """A normalizer for ``settings``, stopping once ``stop`` is set (call its ``run()``).

    ``telemetry``: the process's (None: disabled). ``freeze_state``: the process runs the
    normalizer alone, so its state may be frozen after each transaction
    (``connector.normalize.collector``). ``progress``: the stall watch to report to (None: one
    of its own).
    """
    telemetry = telemetry if telemetry is not None else Telemetry.disabled()
    n, topics = settings.normalizer, settings.topics
    progress = progress if progress is not None else ProgressWatch(
        "normalizer", settings.telemetry.stall_after_seconds, metrics=telemetry.metrics)
    clients = NormalizerClients(settings.kafka, n.group_id, n.instance_id,
                                n.transaction_timeout_ms)
    wait = ClusterWait(settings.kafka.bootstrap_servers, stop)
    collector = CollectorPolicy(freeze=freeze_state)
    codecs = TopicCodecs.from_settings(settings)
    state = PartitionStates(WebinarTable())
    changelogs = Changelogs.of_group(n.group_id, topics.activity, topics.webinars)
    rules = rules_from(settings)
    webinar_decoder = codecs.decoder(topics.webinars)  # one for the table and the projectors
    transactions = BoundedTransactions(TransactionBounds(
        give_up_seconds=max(n.transaction_timeout_ms / 1000, 10.0)))
    commits = TransactionCommitter(topics, changelogs, state, codecs.codec(topics.commands),
                                   clients, wait, transactions, telemetry, progress, collector)
    parts = NormalizerParts(
        state=state, changelogs=changelogs, rules=rules,
        records=RecordHandler(topics, state, codecs.decoder(topics.activity), webinar_decoder,
                              telemetry, n.idle_punctuation_seconds),
        commits=commits,
        rebalance=RebalanceHandler(topics, changelogs, state, rules, clients, progress,
                                   commits.await_commit),
        webinar_decoder=webinar_decoder, wait=wait)
    return NormalizerWorker(topics, n, clients, parts, stop, telemetry, progress, collector)


def run_normalizer(settings: Settings, stop: threading.Event,
                   telemetry: Telemetry | None = None, *, freeze_state: bool = False,
                   progress: ProgressWatch | None = None) -> None:
    """Entry point for `connector run normalizer`.

    ``telemetry``: the process's (the CLI builds one); None builds one from
    ``settings.telemetry`` for this worker alone and shuts it down on return.
    """
    if telemetry is not None:
        normalizer_worker(settings, stop, telemetry, freeze_state=freeze_state,
                          progress=progress).run()
        return
    with Telemetry.from_settings(settings.telemetry) as owned:
        normalizer_worker(settings, stop, owned, freeze_state=freeze_state,
                          progress=progress).run()
