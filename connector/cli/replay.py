"""`connector replay reset|backfill`: re-run the pipeline from a point in time.

reset     moves a consumer group's committed offsets, with kafka-consumer-groups' flags; for the
          normalizer's group it also replaces the normalizer state (connector.replay.state)
backfill  re-sends one time range to HubSpot through temporary copies (connector.replay.backfill)

Both are dry runs unless --execute is given. Exit codes: 0 done (or planned), 1 the cluster says
no (unknown group or topic, active group, Kafka refused), 2 malformed input or a time in the
future (click usage errors, each with an example of a valid value).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from connector.cli.common import reports_errors, settings_from
from connector.config import Settings
from connector.replay.backfill_plan import BackfillPlan, BackfillReport, plan_backfill
from connector.replay.cluster import Cluster
from connector.replay.plan import Kind, Strategy, format_table
from connector.replay.reset import ResetOutcome, ResetRequest, reset
from connector.replay.run import open_cluster, resume_backfill, run_backfill
from connector.replay.spec import (
    DATETIME_EXAMPLE,
    DURATION_EXAMPLE,
    SpecError,
    TopicSelector,
    format_ms,
    merge_selectors,
    parse_datetime,
    parse_duration,
    parse_offsets_csv,
    parse_time,
    parse_topic_spec,
)


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Parsed(click.ParamType):
    """A click type around one of connector.replay.spec's parsers (SpecError -> usage error)."""

    def __init__(self, name: str, parse: Any):
        self.name = name
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self._parse(value)
        except SpecError as exc:
            self.fail(str(exc), param, ctx)


def _offset(text: str) -> int:
    if not text.strip().isdigit():
        raise SpecError(f"{text!r} is not an offset (a non-negative integer); "
                        "e.g. --to-offset 1200")
    return int(text)


def _shift(text: str) -> int:
    value = text.strip()
    if not value.lstrip("+-").isdigit():
        raise SpecError(f"{text!r} is not a shift (an integer, negative to go back); "
                        "e.g. --shift-by -500")
    return int(value)


DATETIME = _Parsed("DATETIME", lambda v: parse_datetime(v, _now_ms()))
DURATION = _Parsed("DURATION", parse_duration)
TIME = _Parsed("TIME", lambda v: parse_time(v, _now_ms()))
TOPIC = _Parsed("TOPIC[:P[,P]]", parse_topic_spec)
OFFSET = _Parsed("N", _offset)
SHIFT = _Parsed("N", _shift)


@click.group("replay")
def replay_group() -> None:
    """Re-run the pipeline from a point in time: move a group's offsets (reset), or re-send a
    time range to HubSpot without touching the live groups (backfill). Dry runs unless
    --execute."""


@replay_group.command("reset")
@click.option("--group", "group", required=True, metavar="normalizer|sink|GROUP_ID",
              help="The connector's normalizer or sink group (as configured), or any group id.")
@click.option("--topic", "topics", type=TOPIC, multiple=True,
              help="Topic, optionally with partitions (t:0,2 or t:0-3); repeatable. Default: "
                   "the group's input topics (any other group: the topics it committed).")
@click.option("--to-earliest", is_flag=True, help="The oldest offset still held.")
@click.option("--to-latest", is_flag=True, help="The end: skip everything not yet consumed.")
@click.option("--to-datetime", type=DATETIME,
              help=f"The first record at or after a time, e.g. {DATETIME_EXAMPLE} "
                   "(a time zone is required).")
@click.option("--by-duration", type=DURATION,
              help=f"The first record at or after that long ago: {DURATION_EXAMPLE}.")
@click.option("--to-offset", type=OFFSET, help="This offset in every chosen partition.")
@click.option("--shift-by", type=SHIFT, help="Current offset plus N (negative: go back).")
@click.option("--from-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A CSV of topic,partition,offset lines (kafka-consumer-groups' format).")
@click.option("--execute", is_flag=True, help="Apply the plan (default: only show it).")
@click.option("--dry-run", is_flag=True, help="Only show the plan (the default).")
@click.option("--force", is_flag=True,
              help="Skip the active-group check (not for the normalizer group, whose state "
                   "needs every instance stopped). Kafka still rejects commits for a group "
                   "with members.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.pass_context
@reports_errors
def reset_command(ctx: click.Context, group: str, topics: tuple[TopicSelector, ...],
                  to_earliest: bool, to_latest: bool, to_datetime: int | None,
                  by_duration: int | None, to_offset: int | None, shift_by: int | None,
                  from_file: Path | None, execute: bool, dry_run: bool, force: bool,
                  as_json: bool) -> None:
    """Move a consumer group's committed offsets, like kafka-consumer-groups --reset-offsets.

    Prints, per partition, the current committed offset, the target and how the lag changes;
    every target is clamped to the offsets Kafka still holds. Applies it only with --execute,
    and only while the group has no active member (stop its instances first).

    Resetting the normalizer group also replaces the normalizer's state of every partition it
    moves: the state is rebuilt from the partition's records before the target (empty for
    --to-earliest) and written to its changelog in the same Kafka transaction as the offsets,
    so the normalizer emits again exactly what it would emit from there. Resetting the sink
    group re-applies commands, which HubSpot's idempotent operations make harmless.

    \b
    Examples:
      connector replay reset --group normalizer --to-earliest
      connector replay reset --group sink --by-duration 2h --execute
      connector replay reset --group my-group --topic t:0,1 --shift-by -100 --json
    """
    strategy = _strategy(to_earliest, to_latest, to_datetime, by_duration, to_offset,
                         shift_by, from_file, topics)
    if execute and dry_run:
        raise click.UsageError("--execute and --dry-run exclude each other")
    settings = settings_from(ctx)
    request = ResetRequest(group, tuple(merge_selectors(list(topics))), strategy)
    outcome = reset(settings, request, execute=execute, force=force)
    if as_json:
        click.echo(json.dumps(outcome.as_json(), indent=2))
        return
    _print_reset(outcome, strategy)


def _print_reset(outcome: ResetOutcome, strategy: Strategy) -> None:
    plan, execute = outcome.plan, outcome.executed
    mode = "executed" if execute else "dry run, add --execute to apply"
    click.echo(f"group {plan.group_id} ({plan.role}, {plan.group.state}): reset "
               f"{strategy.describe()} ({mode})")
    for member in plan.group.members:
        click.echo(f"  active member: {member}")
    click.echo("")
    click.echo(format_table(plan.rows))
    if plan.state:
        verb = "replaced" if execute else "to replace"
        click.echo("")
        click.echo(f"normalizer state {verb} (rebuilt from the records before the target):")
        for change in plan.state:
            click.echo(f"  {change.changelog}[{change.partition}] from {change.source} "
                       f"offsets [{change.start}, {change.end})")
    for line in outcome.done:
        click.echo(line)


def _strategy(to_earliest: bool, to_latest: bool, to_datetime: int | None,
              by_duration: int | None, to_offset: int | None, shift_by: int | None,
              from_file: Path | None, topics: tuple[TopicSelector, ...]) -> Strategy:
    chosen = [name for name, value in (
        ("--to-earliest", to_earliest), ("--to-latest", to_latest),
        ("--to-datetime", to_datetime is not None), ("--by-duration", by_duration is not None),
        ("--to-offset", to_offset is not None), ("--shift-by", shift_by is not None),
        ("--from-file", from_file is not None)) if value]
    if len(chosen) != 1:
        raise click.UsageError(
            f"choose exactly one of --to-earliest, --to-latest, --to-datetime, --by-duration, "
            f"--to-offset, --shift-by, --from-file (got {', '.join(chosen) or 'none'}); "
            "e.g. --to-datetime 2026-01-01T10:00:00Z")
    if to_datetime is not None:
        return Strategy(Kind.DATETIME, to_datetime)
    if by_duration is not None:
        return Strategy(Kind.DURATION, _now_ms() - by_duration)
    if to_offset is not None:
        return Strategy(Kind.OFFSET, to_offset)
    if shift_by is not None:
        return Strategy(Kind.SHIFT, shift_by)
    if from_file is not None:
        if topics:
            raise click.UsageError("--from-file names its partitions; leave out --topic")
        try:
            offsets = parse_offsets_csv(from_file.read_text())
        except SpecError as exc:
            raise click.BadParameter(f"{from_file}: {exc}", param_hint="--from-file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"{from_file}: {exc}", param_hint="--from-file") from None
        return Strategy(Kind.FILE, offsets=tuple((t, p, o) for (t, p), o in offsets.items()))
    return Strategy(Kind.EARLIEST if to_earliest else Kind.LATEST)


@replay_group.command("backfill")
@click.option("--from", "from_ms", type=TIME, default=None,
              help=f"Start: a datetime ({DATETIME_EXAMPLE}) or a duration ago (2h, PT30M). "
                   "Required unless --resume.")
@click.option("--to", "to_ms", type=TIME, default=None,
              help="End (exclusive), same forms; default: the end offsets when it starts.")
@click.option("--topic", "roles", type=click.Choice(["activity", "webinars"]), multiple=True,
              help="Re-run only the activity (attendance) or the webinars (event) records of "
                   "the range; repeatable. Default: both.")
@click.option("--account", "accounts", multiple=True, metavar="ACCOUNT",
              help="Send only this platform account's commands (externalAccountId, the "
                   "records' accountId) to HubSpot; repeatable. Default: every account.")
@click.option("--execute", is_flag=True, help="Run it (default: only show the plan).")
@click.option("--requests", "count_requests", is_flag=True,
              help="Dry run: also count the requests it would send, their inputs and the "
                   "time at the rate limit (copies and normalizes the range into temporary "
                   "topics, deleted after; nothing goes to HubSpot).")
@click.option("--resume", "resume_id", metavar="ID", default=None,
              help="Go on with backfill ID, killed before it could clean up (its temporary "
                   "topics are still there): what HubSpot acknowledged is not sent again. "
                   "With --execute; takes no other range option.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan (and result) as JSON.")
@click.option("--timeout", default=3600.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds each step may take before the backfill gives up (and cleans up).")
@click.pass_context
@reports_errors
def backfill_command(ctx: click.Context, from_ms: int | None, to_ms: int | None,
                     roles: tuple[str, ...], accounts: tuple[str, ...], execute: bool,
                     count_requests: bool, resume_id: str | None, as_json: bool,
                     timeout: float) -> None:
    """Re-send a time range to HubSpot, leaving the live normalizer and sink groups alone.

    Copies the range's records to temporary topics, rebuilds the normalizer state as of the
    range's start from the earlier records, runs a temporary normalizer and a temporary sink
    (own groups, transactional id, changelogs and commands topic <commands>.backfill-<id>)
    until the range is through, then deletes every temporary topic and group.

    Exact as long as the activity topic still holds the earlier records of the attendances
    that overlap the range (its retention); the webinar table is the webinars topic as of the
    range's end. Backfilling what HubSpot already holds changes nothing (idempotent writes).
    With --topic activity alone, the range's marketing events must exist in HubSpot already.
    With --account, every record of the range is still normalized (the normalizer's stream
    time follows all of them, as live), but only that account's commands reach HubSpot: what
    a new install wants, e.g. --account acct-7 --from 7d.
    The sink gets the commands in planned order, one webinar after another, each request as
    full as HubSpot's rules allow (each person's order kept); the plan's request count is
    printed before it sends. Killed (SIGKILL, a lost machine) rather than stopped, it leaves its
    temporary topics: --resume <id> goes on without re-sending what HubSpot acknowledged.
    Shows a progress bar with rate and ETA on a terminal, plain lines otherwise.

    \b
    Examples:
      connector replay backfill --from 2026-01-01T10:00:00Z --to 2026-01-01T12:00:00Z
      connector replay backfill --from 6h --topic activity --execute
      connector replay backfill --from 7d --account acct-7 --execute
      connector replay backfill --resume 3f9c2a1b --execute
    """
    if resume_id is not None:
        if from_ms is not None or to_ms is not None or roles or accounts:
            raise click.UsageError("--resume takes the range of the backfill it resumes: "
                                   "leave out --from, --to, --topic and --account")
        if not execute:
            raise click.UsageError("--resume sends to HubSpot: add --execute")
        settings = settings_from(ctx)
        with open_cluster(settings) as cluster:
            plan, report = resume_backfill(settings, cluster, resume_id, timeout=timeout,
                                           tty=sys.stdout.isatty() and not as_json,
                                           out=sys.stderr if as_json else None)
        _print_backfill(plan, report, as_json)
        return
    if from_ms is None:
        raise click.UsageError("Missing option '--from' (or --resume ID)")
    if any(not a.strip() for a in accounts):
        raise click.BadParameter("expected a platform account id, got ''",
                                 param_hint="--account")
    if to_ms is not None and to_ms <= from_ms:
        raise click.BadParameter(f"--to ({format_ms(to_ms)}) must be after --from "
                                 f"({format_ms(from_ms)})", param_hint="--to")
    settings = settings_from(ctx)
    with open_cluster(settings) as cluster:
        plan = plan_backfill(settings, cluster, from_ms, to_ms,
                             tuple(dict.fromkeys(roles)) or ("activity", "webinars"),
                             accounts=tuple(a.strip() for a in accounts))
        if not execute:
            counted = _count_requests(settings, cluster, plan, timeout) \
                if count_requests else []
            if as_json:
                click.echo(json.dumps({**plan.as_json(), "executed": False,
                                       **({"requests": counted} if count_requests else {})},
                                      indent=2))
            else:
                click.echo("\n".join([*plan.describe(settings), *counted]))
                click.echo("\n(dry run: add --execute to run it)")
            return
        if not as_json:
            click.echo("\n".join(plan.describe(settings)))
        report = run_backfill(settings, cluster, plan, timeout=timeout,
                              tty=sys.stdout.isatty() and not as_json,
                              out=sys.stderr if as_json else None)
    _print_backfill(plan, report, as_json)


def _count_requests(settings: Settings, cluster: Cluster, plan: BackfillPlan,
                    timeout: float) -> list[str]:
    """The dry run's request count (its progress on stderr; the plan's lines returned)."""
    report = run_backfill(settings, cluster, plan, timeout=timeout, tty=False, out=sys.stderr,
                          count_only=True)
    return ["", *report.plan_lines]


def _print_backfill(plan: BackfillPlan, report: BackfillReport, as_json: bool) -> None:
    if as_json:
        by_account = {} if report.other_accounts is None else {
            "other_accounts_commands": report.other_accounts,
            "undecodable_commands": report.undecodable}
        click.echo(json.dumps({**plan.as_json(), "executed": True, "commands": report.commands,
                               **by_account,
                               "plan": report.plan_lines, "resumed": report.resumed,
                               "records": report.copied, "warm_state_records":
                                   report.warm_records, "seconds": round(report.seconds, 1),
                               "cleanup_problems": report.cleanup_problems}, indent=2))
    else:
        click.echo("\n".join(report.lines()))
