"""What `connector replay backfill` will do: the offset ranges per partition and the temporary
topics and groups, planned without changing anything (the dry run prints it); and what a run did.

The run itself is connector.replay.backfill's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from connector.config import Settings
from connector.installs.routing import OAUTH_WINDOW_LIMIT, OAUTH_WINDOW_SECONDS
from connector.replay.cluster import TP, Cluster
from connector.replay.progress import duration
from connector.replay.requests import RequestCount
from connector.replay.spec import format_ms
from connector.replay.state import ACTIVITY, WEBINARS
from connector.runtime import changelog

__all__ = ["BackfillPlan", "BackfillReport", "Names", "plan_backfill"]


@dataclass(frozen=True)
class Names:
    """The temporary topics and groups of one backfill."""

    backfill_id: str
    activity: str
    webinars: str
    commands: str
    normalizer_group: str
    sink_group: str
    activity_changelog: str
    webinars_changelog: str
    dead_letters: tuple[str, ...]
    #: the commands in planned order (connector.replay.planned), which the sink reads
    planned: str
    #: its plan and how far it got (connector.replay.journal), for --resume
    journal: str

    @classmethod
    def for_id(cls, settings: Settings, backfill_id: str) -> Names:
        suffix = f".backfill-{backfill_id}"
        topics = settings.topics
        activity, webinars = topics.activity + suffix, topics.webinars + suffix
        group = settings.normalizer.group_id + suffix
        return cls(backfill_id, activity, webinars, topics.commands + suffix, group,
                   settings.sink.group_id + suffix,
                   changelog.changelog_topic(group, activity),
                   changelog.changelog_topic(group, webinars),
                   (topics.dlq_for(activity), topics.dlq_for(webinars)),
                   topics.commands + suffix + "-planned", topics.commands + suffix + "-journal")

    def topics(self) -> list[str]:
        return [self.activity, self.webinars, self.commands, self.activity_changelog,
                self.webinars_changelog, *self.dead_letters, self.planned, self.journal]


@dataclass
class BackfillPlan:
    """Offset ranges per source partition (original topics) and the temporary names."""

    from_ms: int
    to_ms: int | None
    roles: tuple[str, ...]
    names: Names
    #: the range to re-run, per partition: [start, end)
    activity: dict[int, tuple[int, int]]
    webinars: dict[int, tuple[int, int]]
    #: low watermarks (the warm state is rebuilt from there up to the range's start)
    activity_low: dict[int, int]
    webinars_low: dict[int, int]
    #: --account: only these platform accounts' commands go to HubSpot (empty: every account)
    accounts: tuple[str, ...] = ()

    def to_journal(self) -> dict[str, Any]:
        """What --resume needs to run the same backfill again (connector.replay.journal)."""
        return {"from_ms": self.from_ms, "to_ms": self.to_ms, "roles": list(self.roles),
                "accounts": list(self.accounts),
                **{name: {str(p): list(r) for p, r in ranges.items()}
                   for name, ranges in (("activity", self.activity),
                                        ("webinars", self.webinars))},
                **{name: {str(p): o for p, o in lows.items()}
                   for name, lows in (("activity_low", self.activity_low),
                                      ("webinars_low", self.webinars_low))}}

    @classmethod
    def from_journal(cls, settings: Settings, data: dict[str, Any],
                     backfill_id: str) -> BackfillPlan:
        """The plan :meth:`to_journal` wrote, named ``backfill_id``."""
        def ranges(name: str) -> dict[int, tuple[int, int]]:
            return {int(p): (int(r[0]), int(r[1])) for p, r in data[name].items()}

        def lows(name: str) -> dict[int, int]:
            return {int(p): int(o) for p, o in data[name].items()}

        return cls(int(data["from_ms"]), data["to_ms"], tuple(data["roles"]),
                   Names.for_id(settings, backfill_id), ranges("activity"), ranges("webinars"),
                   lows("activity_low"), lows("webinars_low"), tuple(data["accounts"]))

    def records(self) -> int:
        return sum(end - start for start, end in self.activity.values()) + \
            sum(end - start for start, end in self.webinars.values())

    def warm_ranges(self) -> tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]]:
        """[low, start) of each partition with records in the range (the others need no state)."""
        return ({p: (self.activity_low[p], start) for p, (start, end) in self.activity.items()
                 if end > start},
                {p: (self.webinars_low[p], start) for p, (start, end) in self.webinars.items()
                 if end > start})

    def warm_records(self) -> int:
        return sum(end - start for ranges in self.warm_ranges() for start, end in ranges.values())

    def describe(self, settings: Settings) -> list[str]:
        """The dry-run text."""
        until = format_ms(self.to_ms) if self.to_ms is not None else "now (end offsets taken now)"
        lines = [f"backfill {self.names.backfill_id}: {format_ms(self.from_ms)} .. {until}, "
                 f"topics: {', '.join(self.roles)}"]
        if self.accounts:
            lines.append(f"accounts: {', '.join(self.accounts)} (every record of the range is "
                         "normalized, as the live normalizer saw them; only these accounts' "
                         "commands go to HubSpot)")
        lines.append("")
        rows = [(settings.topics.activity, p, r) for p, r in sorted(self.activity.items())] + \
            [(settings.topics.webinars, p, r) for p, r in sorted(self.webinars.items())]
        header = ("TOPIC", "PARTITION", "START", "END", "RECORDS")
        table = [header, *[(t, str(p), str(s), str(e), str(e - s)) for t, p, (s, e) in rows]]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                            for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                  for row in table]
        lines += ["",
                  f"{self.records()} record(s) to re-run; state as of the start rebuilt from "
                  f"{self.warm_records()} earlier record(s); webinar table as of the range's end",
                  f"temporary topics: {', '.join(self.names.topics())}",
                  f"temporary groups: {self.names.normalizer_group}, {self.names.sink_group}",
                  f"HubSpot: {settings.hubspot.base_url}; failed commands go to "
                  f"{settings.topics.commands_dlq}, rejected records to "
                  f"{settings.topics.dlq_for(settings.topics.activity)} and "
                  f"{settings.topics.dlq_for(settings.topics.webinars)}, marked "
                  f"connector.errors.backfill={self.names.backfill_id}"]
        return lines

    def as_json(self) -> dict[str, Any]:
        return {"backfill_id": self.names.backfill_id, "from": format_ms(self.from_ms),
                "to": format_ms(self.to_ms) if self.to_ms is not None else None,
                "topics": list(self.roles), "accounts": list(self.accounts),
                "records": self.records(),
                "warm_state_records": self.warm_records(),
                "activity": {str(p): list(r) for p, r in sorted(self.activity.items())},
                "webinars": {str(p): list(r) for p, r in sorted(self.webinars.items())},
                "temporary_topics": self.names.topics(),
                "temporary_groups": [self.names.normalizer_group, self.names.sink_group]}


@dataclass
class BackfillReport:
    """What one backfill did."""

    copied: int = 0
    warm_records: int = 0
    commands: int = 0
    #: --account: commands of other accounts, normalized but not sent (None: no --account)
    other_accounts: int | None = None
    #: --account: commands that did not decode, so their account is unknown (not sent)
    undecodable: int = 0
    normalizer_dead_letters: int = 0
    #: What the planned order costs in requests, and how long at the budget
    plan_lines: list[str] = field(default_factory=list)
    #: The backfill's id, which its dead letters carry.
    backfill_id: str = ""
    #: --resume: only the sending went on (copy, state and normalizing were done before)
    resumed: bool = False
    seconds: float = 0.0
    cleanup_problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        if self.resumed:
            out = [f"resumed backfill {self.backfill_id}: sent the rest of its {self.commands} "
                   f"planned command(s) to HubSpot in {self.seconds:.1f}s"]
        else:
            out = [f"re-ran {self.copied} record(s) (state from {self.warm_records} earlier), "
                   f"sent {self.commands} command(s) to HubSpot in {self.seconds:.1f}s"]
        out += self.plan_lines
        if self.other_accounts is not None:
            out.append(f"left out {self.other_accounts} command(s) of other accounts")
        if self.undecodable:
            out.append(f"{self.undecodable} command(s) did not decode and were not sent "
                       "(their account is unknown)")
        if self.normalizer_dead_letters:
            out.append(f"{self.normalizer_dead_letters} record(s) rejected by the normalizer: "
                       "dead-lettered to the live dead-letter topics with "
                       f"connector.errors.backfill={self.backfill_id} (`connector dlq show "
                       f"<topic> --backfill {self.backfill_id}`)")
        out += [f"cleanup: {p}" for p in self.cleanup_problems]
        return out


def request_plan_lines(count: RequestCount, settings: Settings) -> list[str]:
    """What the plan sends (requests, how full) and how long that takes at the rate budget."""
    if settings.hubspot.mode == "app":  # each HubSpot account its own budget
        seconds = count.seconds_at(OAUTH_WINDOW_LIMIT, OAUTH_WINDOW_SECONDS, per_account=True)
        busiest = max(count.by_account.values(), default=0)
        budget = (f"{OAUTH_WINDOW_LIMIT} / {OAUTH_WINDOW_SECONDS} s per HubSpot account, "
                  f"{len(count.by_account)} account(s), the busiest {busiest:,} request(s)")
    else:
        sink = settings.sink
        seconds = count.seconds_at(sink.window_limit, sink.window_seconds)
        budget = f"{sink.window_limit} / {sink.window_seconds} s"
    return [f"planned {count.requests:,} request(s): {count.attendance_requests:,} attendance "
            f"request(s) of {count.inputs_per_request:.1f} input(s) on average (at most "
            f"{count.max_inputs}), {count.event_requests:,} event request(s)",
            f"at {budget}: about {duration(seconds)} of sending"]


def plan_backfill(settings: Settings, cluster: Cluster, from_ms: int, to_ms: int | None,
                  roles: tuple[str, ...], backfill_id: str | None = None,
                  accounts: tuple[str, ...] = ()) -> BackfillPlan:
    """Offsets of the range per partition; changes nothing. `accounts`: send only these
    platform accounts' commands."""
    topics = settings.topics
    activity_tps = cluster.resolve_all(topics.activity)
    webinars_tps = cluster.resolve_all(topics.webinars)
    marks = cluster.watermarks(activity_tps + webinars_tps)
    starts = cluster.offsets_for_time(activity_tps + webinars_tps, from_ms)
    ends = cluster.offsets_for_time(activity_tps + webinars_tps, to_ms) \
        if to_ms is not None else {}

    def ranges(tps: list[TP], selected: bool) -> dict[int, tuple[int, int]]:
        out = {}
        for tp in tps:
            high = marks[tp][1]
            end = ends.get(tp)
            end = high if end is None else min(end, high)
            start = starts.get(tp)
            start = min(high if start is None else start, end)
            out[tp[1]] = (start, end) if selected else (end, end)
        return out

    return BackfillPlan(
        from_ms, to_ms, roles, Names.for_id(settings, backfill_id or uuid.uuid4().hex[:8]),
        ranges(activity_tps, ACTIVITY in roles), ranges(webinars_tps, WEBINARS in roles),
        {tp[1]: marks[tp][0] for tp in activity_tps},
        {tp[1]: marks[tp][0] for tp in webinars_tps}, tuple(dict.fromkeys(accounts)))
