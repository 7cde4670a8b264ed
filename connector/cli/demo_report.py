"""The demo's summary: HubSpot's counts next to the input's prediction, the event, dead letters;
with ``--accounts``, one line per platform account and the HubSpot account it installed into."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import click

from connector.demo.accounts import AccountOutcome, AccountsResult
from connector.demo.run import DemoResult
from connector.sample.oracle import Expected

STATES = ("ATTENDED", "REGISTERED", "CANCELLED")


def _when(ms: Any) -> str:
    if ms in (None, ""):
        return "-"
    return datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _counts(outcome: dict[tuple[str, str], Expected], webinar_id: str) -> Counter[str]:
    return Counter(v.state for (w, _), v in outcome.items() if w == webinar_id)


def print_summary(result: DemoResult) -> None:
    """Print the whole summary."""
    predicted, shown = result.predicted, result.shown
    events = {e["external_event_id"]: e for e in result.state["events"]}
    click.echo("")
    for webinar_id in sorted({w["webinarId"] for w in result.sample.webinars}):
        _print_webinar(webinar_id, events.get(webinar_id), predicted, shown)
    matching = sum(1 for key, value in predicted.items() if shown.get(key) == value)
    extra = len(set(shown) - set(predicted))
    click.echo(f"people as predicted: {matching}/{len(predicted)}"
               + (f", {extra} not predicted" if extra else ""))
    _print_dead_letters(result.dead_letters)
    verdict = "OK" if matching == len(predicted) and not extra else "DIFFERENT"
    click.echo(f"\n{verdict}: HubSpot shows what the input predicts ({result.elapsed:.0f}s)")


def _print_webinar(webinar_id: str, event: dict[str, Any] | None,
                   predicted: dict[tuple[str, str], Expected],
                   shown: dict[tuple[str, str], Expected]) -> None:
    if event is None:
        click.echo(f"webinar {webinar_id}: no marketing event in HubSpot")
        return
    click.echo(f"marketing event {event['external_event_id']} ({event['event_name']!r}, "
               f"{event.get('event_type') or '-'}, organizer {event.get('event_organizer')})")
    click.echo(f"  scheduled {_when(event.get('start_ms'))} .. {_when(event.get('end_ms'))}; "
               f"completed={bool(event.get('completed'))} "
               f"cancelled={bool(event.get('cancelled'))}")
    want, got = _counts(predicted, webinar_id), _counts(shown, webinar_id)
    click.echo(f"  {'state':<12}{'input predicts':>16}{'HubSpot shows':>16}")
    for name in STATES:
        mark = "" if want[name] == got[name] else "   <- differs"
        click.echo(f"  {name:<12}{want[name]:>16}{got[name]:>16}{mark}")
    counters = event.get("counters") or {}
    click.echo(f"  HubSpot's counters: {counters} (registered people who never joined count "
               "as noShows once the event is completed)")


def _print_dead_letters(dead_letters: list[tuple[str, Counter[str]]]) -> None:
    click.echo("dead letters:")
    for topic, reasons in dead_letters:
        listed = ", ".join(f"{n} x {reason}" for reason, n in reasons.most_common()) or "none"
        click.echo(f"  {topic}: {listed}")


def print_accounts_summary(result: AccountsResult) -> None:
    """Print the app-mode summary: per platform account, the HubSpot account it installed into,
    its participations HubSpot shows against the prediction, whether they match (and nothing
    of another account's is there), its dead letters."""
    click.echo("")
    click.echo(f"{'platform account':<18}{'HubSpot account':<17}{'webinars':<10}"
               f"{'shown':>7}{'predicted':>11}  {'match':<7}dead letters")
    for outcome in result.outcomes:
        click.echo(f"{outcome.account:<18}{outcome.hub_id:<17}"
                   f"{','.join(outcome.webinar_ids):<10}{len(outcome.shown):>7}"
                   f"{len(outcome.predicted):>11}  {'yes' if outcome.matched else 'no':<7}"
                   f"{_reasons(outcome.dead_letters)}")
    for outcome in result.outcomes:
        if not outcome.matched:
            _print_difference(outcome)
    click.echo(f"HubSpot account {result.default_hub_id} (no install): "
               + (", ".join(result.default_hub_events) or "no marketing events"))
    if result.unattributed_dead_letters:
        click.echo(f"dead letters naming no account: "
                   f"{_reasons(result.unattributed_dead_letters)}")
    accounts = len(result.outcomes)
    if result.matched:
        click.echo(f"\nOK: each of {accounts} HubSpot accounts shows its own platform account's "
                   f"webinars as the input predicts, and nothing of another's "
                   f"({result.elapsed:.0f}s)")
    else:
        failed = sum(1 for o in result.outcomes if not o.matched)
        click.echo(f"\nDIFFERENT: {failed} of {accounts} HubSpot accounts differ from the "
                   f"prediction ({result.elapsed:.0f}s)")


def _reasons(reasons: Counter[str]) -> str:
    return ", ".join(f"{n} x {reason}" for reason, n in reasons.most_common()) or "none"


def _print_difference(outcome: AccountOutcome) -> None:
    predicted, shown = outcome.predicted, outcome.shown
    missing = sum(1 for key, value in predicted.items() if shown.get(key) != value)
    extra = len(set(shown) - set(predicted))
    click.echo(f"  {outcome.account} -> {outcome.hub_id}: {missing} predicted not shown, "
               f"{extra} shown not predicted"
               + (f"; events of another account: {', '.join(outcome.foreign_events)}"
                  if outcome.foreign_events else ""))
