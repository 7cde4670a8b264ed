"""`connector dlq`: list dead-letter topics, show dead letters decoded, redrive them.

The work is in connector.dlq (connector.dlq.operations: selection, progress, redrive); this
module parses options, reads the clock and the environment, and prints.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from connector.cli.common import reports_errors, settings_from
from connector.dlq.filters import TIME_EXAMPLES, FilterError, RecordFilter
from connector.dlq.operations import (
    RedriveRequest,
    account_lookup,
    execute_redrive,
    failure,
    plan_redrive,
    rendered,
    select_shown,
    summaries,
)
from connector.dlq.topic import DeadLetterTopics

F = TypeVar("F", bound=Callable[..., Any])

HEX_SHOWN = 64  # bytes of an undecodable value shown as hex in text output (JSON has them all)


@click.group("dlq")
def dlq_group() -> None:
    """Inspect and redrive dead letters.

    Dead-letter topics are <source topic>.dlq for the platform topics and
    connector.commands.dlq for the sink (as configured). Each dead letter is the original record
    (key, value, headers) plus error headers: __connect.errors.* (Kafka Connect's names) and
    connector.errors.* (reason, HTTP status, HubSpot category, ...).
    """


ACCOUNT_HELP = ("Platform account: a command's externalAccountId, an activity's or webinar's "
                "accountId (the connector.errors.account header, else the decoded value; a "
                "value that does not decode never matches, and is counted). Repeatable.")


def account_option(func: F) -> F:
    """--account, repeatable: `list`, `show` and `redrive` take it."""
    return click.option("--account", "accounts", multiple=True, metavar="ACCOUNT",
                        help=ACCOUNT_HELP)(func)


def selection_options(func: F) -> F:
    """The filters `show` and `redrive` share."""
    options = [
        account_option,
        click.option("--reason", "reasons", multiple=True, metavar="REASON",
                     help="connector.errors.reason, e.g. event-not-found (repeat for any of "
                          "several)."),
        click.option("--status", "statuses", multiple=True, metavar="STATUS",
                     help="HTTP status (connector.errors.http.status): 429, or a class such as "
                          "5xx (repeatable)."),
        click.option("--webinar", "webinars", multiple=True, metavar="ID",
                     help="webinarId, matched against the record key (repeatable)."),
        click.option("--backfill", "backfills", multiple=True, metavar="ID",
                     help="Dead letters of this backfill's run (connector.errors.backfill; "
                          "`connector replay backfill` prints its id). Repeatable."),
        click.option("--record", "records", multiple=True, metavar="PARTITION:OFFSET",
                     help="One dead letter by its position in the dead-letter topic, e.g. 0:12 "
                          "(repeatable)."),
        click.option("--since", metavar="TIME",
                     help=f"Dead-lettered at or after TIME: {TIME_EXAMPLES}."),
        click.option("--until", metavar="TIME", help="Dead-lettered at or before TIME."),
        click.option("--limit", type=click.IntRange(1), default=None,
                     help="At most this many records (in partition, offset order)."),
        click.option("--json", "as_json", is_flag=True, help="Machine-readable output."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _selection(ctx: click.Context, now_ms: int, params: dict[str, Any]) -> RecordFilter:
    try:
        return RecordFilter.parse(now_ms=now_ms, reasons=params["reasons"],
                                  statuses=params["statuses"], webinars=params["webinars"],
                                  records=params["records"], since=params["since"],
                                  until=params["until"], accounts=params["accounts"],
                                  backfills=params["backfills"])
    except FilterError as exc:
        raise click.UsageError(str(exc), ctx) from None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, sort_keys=False))


# --------------------------------------------------------------------------- list


@dlq_group.command("list", short_help="Dead-letter topics with counts by reason, status and "
                   "exception.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@account_option
@click.pass_context
@reports_errors
def list_command(ctx: click.Context, as_json: bool, accounts: tuple[str, ...]) -> None:
    """Every dead-letter topic that exists, with counts by reason, HTTP status and exception.

    "pending" counts the records no redrive has sent yet (see `connector dlq redrive --help`).
    With --account, only that account's dead letters are counted.
    """
    try:
        selection = RecordFilter.parse(now_ms=_now_ms(), accounts=accounts)
    except FilterError as exc:
        raise click.UsageError(str(exc), ctx) from None
    settings = settings_from(ctx)
    with account_lookup(settings, selection) as account_of:
        found = summaries(DeadLetterTopics(settings), selection, account_of)
    if as_json:
        _emit_json({"topics": [s.to_json() for s in found]})
        return
    if not found:
        t = settings.topics
        click.echo(f"no dead-letter topics (looked for {t.dlq_for(t.activity)}, "
                   f"{t.dlq_for(t.webinars)}, {t.commands_dlq} and *{t.dlq_suffix})")
        return
    for summary in found:
        data = summary.to_json()
        sources = ", ".join(data["sources"]) or "-"
        span = f", {data['first']} .. {data['last']}" if data["first"] else ""
        undecodable = (f", {summary.undecodable} skipped as undecodable (account unknown)"
                       if summary.undecodable else "")
        click.echo(f"{summary.topic}: {summary.records} record(s), {summary.pending} pending, "
                   f"from {sources}{span}{undecodable}")
        for label, key in (("reason", "by_reason"), ("status", "by_status"),
                           ("exception", "by_exception")):
            if data[key]:
                counts = ", ".join(f"{name} {count}" for name, count in data[key].items())
                click.echo(f"  {label + ':':<11}{counts}")


# --------------------------------------------------------------------------- show


@dlq_group.command("show", short_help="Dead letters of a topic, decoded, with all headers.")
@click.argument("topic")
@selection_options
@click.option("--pending", is_flag=True, help="Only records no redrive has sent yet.")
@click.pass_context
@reports_errors
def show_command(ctx: click.Context, topic: str, limit: int | None, as_json: bool,
                 pending: bool, **params: Any) -> None:
    """Dead letters of TOPIC, values decoded, with all their headers.

    The value is decoded with the framing and schema configured for the topic it failed on
    (__connect.errors.topic): the platform's activity and webinar schemas, the connector's
    command schema. Bytes that do not decode (often why the record is here) are shown as hex
    and base64 with the decode error. --json prints one JSON object per line.
    """
    selection = _selection(ctx, _now_ms(), params)
    settings = settings_from(ctx)
    with account_lookup(settings, selection) as account_of:
        shown = select_shown(DeadLetterTopics(settings), topic, selection, pending=pending,
                             limit=limit, account_of=account_of)
    for data in rendered(settings, topic, shown):
        if as_json:
            _emit_json(data)
        else:
            _print_record(data)
    undecodable = (f"; {shown.undecodable} skipped as undecodable (--account cannot tell whose "
                   "they are)" if shown.undecodable else "")
    if not as_json or undecodable:
        click.echo(f"{len(shown.records)} of {shown.read} record(s) shown{undecodable}", err=True)


def _print_record(data: dict[str, Any]) -> None:
    source = data["source"]
    where = (f"{source['topic']}[{source['partition']}]@{source['offset']}"
             if source["topic"] else "unknown")
    key = data["key"] if data["key"] is not None else (
        f"base64:{data['key_base64']}" if "key_base64" in data else "(null)")
    click.echo(f"{data['topic']}[{data['partition']}]@{data['offset']}  {data['time'] or '-'}  "
               f"key={key}")
    click.echo(f"  reason={data['reason'] or '-'}  status={data['status'] or '-'}  "
               f"exception={data['exception'] or '-'}")
    click.echo(f"  from={where}  redrive attempts={data['redrive_attempts']}  "
               f"redriven={'yes' if data['redriven'] else 'no'}")
    value = data["value"]
    if value is None:
        click.echo("  value: null")
    elif "decoded" in value:
        click.echo(f"  value ({value['framing']} {value['schema']}): "
                   f"{json.dumps(value['decoded'], ensure_ascii=False)}")
    else:
        shown = value["hex"][: HEX_SHOWN * 2] + ("..." if value["size"] > HEX_SHOWN else "")
        click.echo(f"  value: not decoded ({value['error']})")
        click.echo(f"    {value['size']} bytes, hex {shown}")
        click.echo(f"    base64 {value['base64']}")
    click.echo("  headers:")
    for header in data["headers"]:
        text = header.get("value")
        if "base64" in header:
            text = f"base64:{header['base64']}"
        click.echo(f"    {header['name']}: {text if text is not None else '(null)'}")
    click.echo("")


# --------------------------------------------------------------------------- redrive


@dlq_group.command("redrive", short_help="Re-produce dead letters to their original topic "
                   "(dry run by default).")
@click.argument("topic")
@selection_options
@click.option("--to", "to_topic", metavar="TOPIC", default=None,
              help="Send to this topic instead of each record's original topic.")
@click.option("--dry-run/--execute", "dry_run", default=True, show_default=True,
              help="--dry-run shows what would be sent; --execute sends it.")
@click.option("--rate", type=click.FloatRange(min=0), default=100.0, show_default=True,
              help="Records per second at most (0: no limit).")
@click.option("--from-start", is_flag=True,
              help="Ignore what earlier redrives recorded: consider every record again.")
@click.pass_context
@reports_errors
def redrive_command(ctx: click.Context, topic: str, limit: int | None, as_json: bool,
                    to_topic: str | None, dry_run: bool, rate: float, from_start: bool,
                    **params: Any) -> None:
    """Re-produce the selected dead letters of TOPIC to their original topic (or --to).

    Each record goes out with its original key, value and headers, to its original partition
    when it goes back to its original topic. The error headers of its last failure move into
    connector.redrive.history (a JSON list of {reason, status, exception, stage, time, topic,
    partition, offset, dlq}, one entry per failure, oldest first), connector.redrive.attempt
    counts the redrives, and connector.redrive.from names the dead letter. A record that fails
    again comes back with these headers and fresh error headers, so no failure is forgotten.

    Dry run by default. Kafka topics are append-only, so a redrive does not remove dead letters:
    after --execute, the consumer group connector-dlq-redrive-<TOPIC> records what was sent
    (its offset: everything below was redriven; its commit metadata: redriven offsets above,
    left by filtered redrives). Later redrives skip those records, and records a filter left
    out stay pending; --from-start considers every record again. The producer is idempotent
    and flushed before anything is recorded.
    """
    if to_topic is not None and to_topic == topic:
        raise click.BadParameter("cannot redrive a dead-letter topic into itself", ctx,
                                 param_hint="--to")
    now_ms = _now_ms()
    request = RedriveRequest(topic, _selection(ctx, now_ms, params), to=to_topic, limit=limit,
                             from_start=from_start)
    settings = settings_from(ctx)
    topics = DeadLetterTopics(settings)
    with account_lookup(settings, request.selection) as account_of:
        plan = plan_redrive(topics, request, now_ms=now_ms, dry_run=dry_run,
                            account_of=account_of)
    if dry_run:
        _report(plan.summary, as_json)
        return
    result = execute_redrive(settings, topics, plan, rate=rate or None)
    _report(plan.summary, as_json)
    error = failure(plan, result)
    if error is not None:
        raise error


def _report(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _emit_json(summary)
        return
    topic = summary["topic"]
    if summary["accounts"]:
        topic += f" (account {', '.join(summary['accounts'])})"
    skipped = summary["skipped_redriven"]
    note = (f"; {skipped} already redriven skipped (--from-start includes them)"
            if skipped else "")
    if summary["skipped_undecodable"]:
        note += (f"; {summary['skipped_undecodable']} skipped as undecodable (--account cannot "
                 "tell whose they are)")
    if summary["mode"] == "dry-run":
        click.echo(f"dry run: would redrive {summary['selected']} record(s) from {topic}{note}")
    for item in summary["records"]:
        target = item["target"] + (f"[{item['target_partition']}]"
                                   if item["target_partition"] is not None else "")
        click.echo(f"  {topic}[{item['partition']}]@{item['offset']}  key={item['key']}  "
                   f"reason={item['reason'] or '-'}  status={item['status'] or '-'}  -> "
                   f"{target}  attempt {item['attempt']}")
    if summary["mode"] == "dry-run":
        if summary["selected"]:
            click.echo("pass --execute to send them")
        return
    targets = ", ".join(f"{t} {n}" for t, n in summary["targets"].items()) or "-"
    recorded = f"; recorded in group {summary['group']}" if summary["sent"] else ""
    click.echo(f"redrove {summary['sent']} of {summary['selected']} record(s) from {topic} "
               f"({targets}){note}{recorded}")

