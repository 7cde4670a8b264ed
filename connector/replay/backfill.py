"""`connector replay backfill`: re-send one time range to HubSpot without touching the live groups.

Everything runs on temporary copies, named after a backfill id, and is deleted at the end:

    <activity>.backfill-<id>    the activity records of [--from, --to), same partitions
    <webinars>.backfill-<id>    the webinars topic up to --to (the webinar table as of --to)
    <commands>.backfill-<id>    the commands the temporary normalizer emits
    <commands>.backfill-<id>-planned    the commands in planned order, which the sink reads
    <commands>.backfill-<id>-journal    its plan and how far it got (--resume after a crash)
    <normalizer group>.backfill-<id>, <sink group>.backfill-<id>   the temporary groups
    and the temporary normalizer's changelogs and dead-letter topics (what it rejected is
    kept first in the live dead-letter topics, marked with the backfill's id:
    connector.replay.dead_letters)

1. plan: the offsets of --from and --to per partition (offsets_for_times; --to defaults to the
   end offsets taken now, so records arriving during the backfill are the live pipeline's);
2. copy the ranges (key, value, headers and timestamp kept, partition kept);
3. warm state: the normalizer state as of --from is rebuilt from each activity partition's
   records before the range ([low watermark, start)) with the webinar table as of --to, and
   written to the temporary changelogs together with the temporary group's start offsets
   (connector.replay.state). So an attendance that began before --from is completed correctly:
   the backfill emits what the live normalizer emitted for the range's records;
4. run a normalizer (connector.runtime.assemble.run_normalizer) with the temporary group,
   transactional id and topics until its committed offsets reach the copies' ends;
5. plan: the commands rewritten in the order that fills each request, with where each request
   ends (connector.replay.planned, connector.replay.requests); with --account, only those
   accounts' commands (by `externalAccountId`), so nothing of another account reaches HubSpot;
   journalled, then the normalizer's rejects kept (connector.replay.journal);
6. run a sink (connector.runtime.sink.run_sink) with the temporary group over the planned
   commands until its committed offsets pass the last one; failed commands go to the live
   `<commands>.dlq` (they are real failures to look at and redrive);
7. delete the temporary topics and groups (also after a failure or Ctrl-C; not after a kill:
   `--resume <id>` goes on from the journal).

Why --account filters the commands and not the normalizer's input: the normalizer's stream time
follows the records of its partition, whatever their account, and it decides when an attendance
closes (the rejoin grace, a webinar's actualEnd). A normalizer fed one account's records alone
would close that account's last attendances later than the live one did, or not within the
range. So every record of the range is normalized (the normalizer is cheap next to HubSpot's
rate limit) and the filter sits between the normalizer and the sink: the account gets exactly
the commands an unfiltered backfill would send it, and no other account gets any.

Limits: the result is exact as long as the activity topic still holds every record of the
attendances that overlap the range (its retention, a week by the platform's contract); records
already deleted cannot be replayed. Stream time follows the records only (no idle punctuation):
an attendance still open at --to, within the rejoin grace, is left to the live normalizer.
Re-sending is harmless: HubSpot's operations are idempotent upserts, so backfilling a range that
HubSpot already holds changes nothing. `--topic activity` alone re-sends attendance only: the
marketing events must exist in HubSpot already, or the sink parks their attendance (up to its
retry budget) and the backfill waits for it until --timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from connector.config import Settings
from connector.dlq.envelope import H_ORIGIN_OFFSET
from connector.errors import ConfigError
from connector.kafka import TopicSpec, clients, ensure_topics
from connector.kafka.clients import KafkaException
from connector.kafka.protocols import ProducerClient
from connector.replay import state as normalizer_state
from connector.replay.backfill_plan import BackfillPlan, BackfillReport, request_plan_lines
from connector.replay.cluster import TP, Cluster, read_ranges
from connector.replay.dead_letters import keep_dead_letters
from connector.replay.errors import ReplayError
from connector.replay.journal import KEPT, PLAN, SENDING, write_entry
from connector.replay.planned import PlannedCommands, plan_commands
from connector.replay.progress import Progress
from connector.runtime.table import WebinarTable
from connector.runtime.workers import Worker, pipeline_workers

__all__ = ["Backfill", "BackfillInterrupted"]

log = logging.getLogger(__name__)

ProgressFactory = Callable[[str, int], Progress]
#: Temporary topics keep their records whatever their (copied, maybe old) timestamps.
_KEEP = {"retention.ms": "-1", "retention.bytes": "-1"}


class BackfillInterrupted(ReplayError):
    """The backfill was stopped (Ctrl-C or SIGTERM); temporary topics and groups are deleted."""


class Backfill:
    """Runs a plan (see the module docstring); `run()` returns the report."""

    def __init__(self, settings: Settings, cluster: Cluster, plan: BackfillPlan, *,
                 progress: ProgressFactory, stop: threading.Event | None = None,
                 normalizer: Worker | None = None, sink: Worker | None = None,
                 timeout: float = 3600.0, clock: Callable[[], float] = time.monotonic,
                 poll_seconds: float = 0.5, say: Callable[[str], None] = log.info):
        self.settings = settings
        self.cluster = cluster
        self.plan = plan
        self.names = plan.names
        self.progress = progress
        self.stop = stop or threading.Event()
        self._normalizer = normalizer
        self._sink = sink
        self.timeout = timeout
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.say = say  # a line for the operator (the plan's requests before sending)
        self.report = BackfillReport(backfill_id=plan.names.backfill_id)

    def run(self) -> BackfillReport:
        """Every step, then the cleanup (also after a failure or a stop)."""
        self._check_token()
        started = self.clock()
        try:
            self._create_topics()
            write_entry(self.settings.kafka, self.names.journal, PLAN, self.plan.to_journal())
            self._send(self._prepare(self._commands()))
        finally:
            self.cleanup()
        self.report.seconds = self.clock() - started
        return self.report

    def count_requests(self) -> BackfillReport:
        """A dry run that counts: copy, state and normalize as a run does, plan the commands'
        order without writing it (nothing goes to HubSpot, no dead letter is kept), clean up.
        The report's ``plan_lines`` say what the run would send and how long it takes."""
        started = self.clock()
        try:
            self._create_topics()
            self._plan(self._commands(), None)
        finally:
            self.cleanup()
        self.report.seconds = self.clock() - started
        return self.report

    def resume_sending(self, journal: dict[str, dict[str, Any]]) -> BackfillReport:
        """After a crash in the sending step (its journal entry ``sending``): the normalizer's
        rejects kept unless the journal says they were, then the temporary sink group goes on
        from its committed offsets; then the cleanup."""
        self._check_token()
        started = self.clock()
        sending = journal[SENDING]
        self.report.resumed = True
        self.report.commands = int(sending["commands"])
        try:
            if KEPT not in journal:
                self._keep_dead_letters()
            self._send({(str(t), int(p)): int(end) for t, p, end in sending["ends"]})
        finally:
            self.cleanup()
        self.report.seconds = self.clock() - started
        return self.report

    def _check_token(self) -> None:
        hubspot = self.settings.hubspot
        token = hubspot.access_token
        if hubspot.mode == "private-app" and (token is None or not token.get_secret_value()):
            # (app mode: each account's install is its token; Settings checked that mode)
            raise ConfigError("CONNECTOR_HUBSPOT__ACCESS_TOKEN ([hubspot] access_token) is "
                              "required to backfill into HubSpot in private-app mode")

    # -- steps -------------------------------------------------------------------------------

    def _create_topics(self) -> None:
        counts = self.cluster.topics()
        topics = self.settings.topics
        activity, webinars = counts[topics.activity], counts[topics.webinars]
        commands = counts.get(topics.commands) or self.settings.normalizer.partitions or activity
        compact = {"cleanup.policy": "compact"}
        ensure_topics(self.settings.kafka, [
            TopicSpec(self.names.activity, activity, config=dict(_KEEP)),
            TopicSpec(self.names.webinars, webinars, config=dict(_KEEP)),
            TopicSpec(self.names.commands, commands, config=dict(_KEEP)),
            TopicSpec(self.names.planned, commands, config=dict(_KEEP)),
            TopicSpec(self.names.journal, 1, config=compact),
            TopicSpec(self.names.activity_changelog, activity, config=compact),
            TopicSpec(self.names.webinars_changelog, webinars, config=compact),
            *[TopicSpec(name, commands) for name in self.names.dead_letters],
        ])

    def _copy(self) -> tuple[dict[TP, int], dict[int, int]]:
        """Copy the activity range and the webinars topic up to the range's end.

        Returns the copies' end offsets, and per webinars partition the copy's offset where the
        range starts (the records before it only feed the webinar table).
        """
        topics, plan = self.settings.topics, self.plan
        ranges = {(topics.activity, p): r for p, r in plan.activity.items()}
        ranges.update({(topics.webinars, p): (plan.webinars_low[p], end)
                       for p, (_, end) in plan.webinars.items()})
        target = {topics.activity: self.names.activity, topics.webinars: self.names.webinars}
        counts: dict[TP, int] = {(target[t], p): 0 for t, p in ranges}
        webinar_start = {p: 0 for p in plan.webinars}
        failures: list[str] = []

        def delivered(error: Any, _message: Any) -> None:
            if error is not None:
                failures.append(str(error))

        producer: ProducerClient = clients.producer(self.settings.kafka, {"linger.ms": 20})
        total = sum(end - start for start, end in ranges.values())
        progress = self.progress("copy", total)
        try:
            for message in read_ranges(self.settings.kafka, ranges):
                self._check_stop()
                topic, partition = message.topic(), message.partition()
                if topic == topics.webinars and message.offset() < plan.webinars[partition][0]:
                    webinar_start[partition] += 1
                _, timestamp = message.timestamp()
                headers = [*(message.headers() or []),
                           (H_ORIGIN_OFFSET, str(message.offset()).encode())]
                clients.produce_waiting(producer, topic=target[topic], key=message.key(),
                                        value=message.value(), headers=headers,
                                        partition=partition,
                                        timestamp=timestamp if timestamp > 0 else 0,
                                        on_delivery=delivered)
                producer.poll(0)
                counts[(target[topic], partition)] += 1
                progress.update(progress.done + 1)
            if producer.flush(60) or failures:
                raise ReplayError(f"copying the range failed: {failures[:3] or 'timed out'}")
        except KafkaException as exc:
            raise ReplayError(f"copying the range failed: {exc.args[0]}") from exc
        finally:
            progress.close()
        self.report.copied = sum(n for (t, _), n in counts.items() if t == self.names.activity)
        self.report.copied += sum(n - webinar_start[p] for (t, p), n in counts.items()
                                  if t == self.names.webinars)
        return counts, webinar_start

    def _warm_state(self, webinar_start: dict[int, int]) -> None:
        """The normalizer state as of the range's start, and the temporary group's offsets."""
        plan = self.plan
        table_ends = {p: end for p, (_, end) in plan.webinars.items()}
        activity, webinars = plan.warm_ranges()
        total = sum(e - s for s, e in activity.values()) + sum(e - s for s, e in webinars.values())
        progress = self.progress("state", total)
        try:
            table = normalizer_state.load_table(self.settings, self.cluster, table_ends) \
                if activity else WebinarTable()
            rebuilt = normalizer_state.rebuild(
                self.settings, table, activity, webinars,
                tick=lambda n: progress.update(progress.done + n))
        finally:
            progress.close()
        self.report.warm_records = rebuilt.records
        entries = normalizer_state.to_changelogs(rebuilt.entries, self.names.activity_changelog,
                                                 self.names.webinars_changelog)
        offsets = {(self.names.activity, p): 0 for p in plan.activity}
        offsets.update({(self.names.webinars, p): webinar_start[p] for p in plan.webinars})
        normalizer_state.commit_with_state(
            self.settings.kafka, self.names.normalizer_group,
            f"{self.names.normalizer_group}-warm", entries, offsets)

    def _normalize(self, copy_ends: dict[TP, int], webinar_start: dict[int, int]) -> None:
        settings = self.settings
        run = self._normalizer or pipeline_workers()["normalizer"]
        temp = settings.model_copy(update={
            "topics": settings.topics.model_copy(update={
                "activity": self.names.activity, "webinars": self.names.webinars,
                "commands": self.names.commands}),
            "normalizer": settings.normalizer.model_copy(update={
                "group_id": self.names.normalizer_group, "idle_punctuation_seconds": 10 ** 9}),
        })
        starts = {(self.names.activity, p): 0 for p in self.plan.activity}
        starts.update({(self.names.webinars, p): webinar_start[p] for p in self.plan.webinars})
        self._run_until(run, temp, "normalize", self.names.normalizer_group, starts, copy_ends)

    def _commands(self) -> dict[TP, int]:
        """Copy, warm the state, normalize: the commands of the range, on the temporary
        commands topic (returns its end offsets)."""
        copy_ends, webinar_start = self._copy()
        self._warm_state(webinar_start)
        self._normalize(copy_ends, webinar_start)
        return self._commands_written()

    def _commands_written(self) -> dict[TP, int]:
        """The end of each partition of the temporary commands topic: the end of the log, as
        the normalizer's last commit may still be writing its markers (its offsets are visible
        first), and the last stable offset would end the read short."""
        tps = self.cluster.resolve_all(self.names.commands)
        marks = self.cluster.watermarks(tps, uncommitted=True)
        return {tp: marks[tp][1] for tp in tps}

    def _prepare(self, commands: dict[TP, int]) -> dict[TP, int]:
        """The commands in planned order, journalled (a crash from here on resumes the
        sending), then the normalizer's rejects kept (journalled too). Returns the planned
        topic's end offsets."""
        planned = self._plan(commands, self.names.planned)
        write_entry(self.settings.kafka, self.names.journal, SENDING, {
            "ends": [[t, p, end] for (t, p), end in sorted(planned.written.items())],
            "commands": planned.commands})
        self._keep_dead_letters()
        return planned.written

    def _keep_dead_letters(self) -> None:
        self.report.normalizer_dead_letters = keep_dead_letters(
            self.settings, self.cluster, self.names, self.plan.accounts, self._check_stop)
        write_entry(self.settings.kafka, self.names.journal, KEPT,
                    {"dead_letters": self.report.normalizer_dead_letters})

    def _send(self, ends: dict[TP, int]) -> None:
        """A sink with the temporary group over the planned commands, until its committed
        offsets reach their ends (from the group's committed offsets: a resume goes on)."""
        if not ends:
            return
        settings = self.settings
        temp = settings.model_copy(update={
            "topics": settings.topics.model_copy(update={"commands": self.names.planned}),
            "sink": settings.sink.model_copy(update={"group_id": self.names.sink_group}),
        })
        run = self._sink or pipeline_workers()["sink"]
        self._run_until(run, temp, "apply", self.names.sink_group, {tp: 0 for tp in ends}, ends)

    def _plan(self, source: dict[TP, int], target: str | None) -> PlannedCommands:
        """The commands in planned order (connector.replay.planned) to ``target``; the
        report says what the plan costs (None: only count)."""
        planned = plan_commands(
            self.settings, source, target,
            accounts=frozenset(self.plan.accounts) if self.plan.accounts else None,
            max_held=self.settings.replay.plan_held_commands, check_stop=self._check_stop)
        report = self.report
        report.commands = planned.commands
        report.other_accounts = planned.other_accounts if self.plan.accounts else None
        report.undecodable = planned.undecodable if self.plan.accounts else 0
        report.plan_lines = request_plan_lines(planned.count, self.settings)
        log.info("backfill_planned id=%s commands=%s requests=%s inputs_per_request=%.1f "
                 "waves=%s", self.names.backfill_id, planned.commands, planned.count.requests,
                 planned.count.inputs_per_request, planned.waves)
        for line in report.plan_lines:
            self.say(line)
        return planned

    # -- running a worker until its group's committed offsets reach the ends -----------------

    def _run_until(self, run: Worker, settings: Settings, label: str, group: str,
                   starts: dict[TP, int], ends: dict[TP, int]) -> None:
        total = sum(max(0, ends[tp] - starts[tp]) for tp in ends)
        progress = self.progress(label, total)
        stop = threading.Event()
        failure: list[BaseException] = []

        def target() -> None:
            try:
                run(settings, stop)
            except BaseException as exc:  # reported below
                failure.append(exc)

        thread = threading.Thread(target=target, name=f"backfill-{label}", daemon=True)
        thread.start()
        deadline = self.clock() + self.timeout
        try:
            while True:
                committed = self.cluster.committed(group, list(ends))
                done = sum(min(committed.get(tp, starts[tp]), ends[tp]) - starts[tp]
                           for tp in ends)
                progress.update(done)
                if all(committed.get(tp, starts[tp]) >= ends[tp] for tp in ends):
                    return
                if failure or not thread.is_alive():
                    raise ReplayError(f"the backfill's {label} worker stopped: "
                                      f"{failure[0] if failure else 'without an error'}")
                self._check_stop()
                if self.clock() > deadline:
                    raise ReplayError(f"the backfill's {label} step did not finish within "
                                      f"{self.timeout:.0f}s ({done} of {total} done)")
                self.stop.wait(self.poll_seconds)
        finally:
            stop.set()
            thread.join(60)
            progress.close()
            if failure and not isinstance(failure[0], Exception):
                raise failure[0]

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise BackfillInterrupted("backfill interrupted; its temporary topics and groups "
                                      "are deleted")

    def cleanup(self) -> None:
        """Delete the temporary topics and groups (what fails is reported, not raised). The
        journal goes first: a kill halfway through leaves nothing --resume would misread (a
        journal saying "sending" without the sink group's offsets would send it all again)."""
        problems = self.cluster.delete_topics([self.names.journal])
        problems += self.cluster.delete_groups([self.names.normalizer_group,
                                                self.names.sink_group])
        problems += self.cluster.delete_topics(
            [t for t in self.names.topics() if t != self.names.journal])
        self.report.cleanup_problems = problems
        for problem in problems:
            log.warning("backfill_cleanup_failed id=%s problem=%s", self.names.backfill_id,
                        problem)

