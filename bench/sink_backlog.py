"""How full the sink's requests are while it works off a backlog (a replay), per held bound.

    .venv/bin/python -m bench.sink_backlog [--webinars 303] [--buffered 50000 100000 200000]

The real command stream of a replay, without a broker or HubSpot: the sample's activities (the
replay bench's, 303 webinars for ~1M activities) go through the normalizer in-process, and its
commands, read in the order the sink reads them (the commands topic's three partitions
interleaved), go through the sink's own `Batcher` under a token bucket of `--limit` requests per
10 s, paused at `--buffered` held commands and resumed at 90%, as `SinkWorker` does. The clock
is simulated, so a 10-minute replay takes well under a minute per bound.

Prints inputs per attendance request (100 = every request full) and the simulated time to
apply the stream. A replay's commands touch every webinar at once (registrations of all of them
interleave), so what one request can carry depends on how many commands the sink may hold.

Simpler than the replay, so it overstates what a bound gains (+29% at 100k vs 50k here, +13%
in the real replay): no event commands (each its own request, sealing its webinar's open
groups early), a distinct contact id for every known person (the replay shares 50, and a
person's second command waits for their first), the partitions taken strictly in turn (the
consumer reads fetch-sized runs), no request latency, and the end drained at once.

Last, what `connector replay backfill` sends for the same commands (its plan, which its sink
sends exactly), and a lower bound no order of them can beat under HubSpot's batch rules.
"""

from __future__ import annotations

import argparse
import collections
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import os

# The command stream comes from the normalizer's in-process harness with its commit replaced,
# which a compiled class does not allow: the simulation runs the native core's sources (set
# before the package is imported).
os.environ["NATIVE_CORE"] = "0"

from connector.normalize.command import Attendance, Command
from connector.replay.requests import RequestCount, plan_event
from connector.sink.request import identifier_kind, person_of, subscriber_state
from connector.serde.record import SourceRecord
from connector.sink.batch import Batcher
from connector.sink.work import EventWork, PendingCommand

MAX_INPUTS = 100


def command_stream(webinars: int, people: int = 1000) -> list[Command]:
    """The normalizer's commands for the replay bench's sample, in the order it emits them."""
    from bench import telemetry_overhead as harness  # the normalizer's in-process harness

    messages, final = harness._messages(webinars, people)
    worker = harness._build("off", final)[0]
    commands: list[Command] = []

    def capture(pending: Any) -> None:
        commands.extend(command for command, _source, _rt in pending.commands)

    harness._run(worker, messages, 20_000, observe=capture)
    return commands


def sink_order(commands: list[Command], partitions: int = 3) -> Iterator[Command]:
    """The commands as one consumer of `partitions` partitions keyed by webinar reads them:
    each partition in order, the partitions interleaved."""
    queues: dict[int, collections.deque[Command]] = collections.defaultdict(collections.deque)
    numbers: dict[str, int] = {}
    for command in commands:
        number = numbers.setdefault(command.externalEventId, len(numbers))
        queues[number % partitions].append(command)
    live = [queues[p] for p in sorted(queues)]
    while live:
        for queue in live:
            yield queue.popleft()
        live = [queue for queue in live if queue]


def simulate(commands: list[Command], *, buffered: int, limit: int,
             max_wait: float = 10.0, linger: float = 0.2) -> dict[str, float]:
    """Apply `commands` through a Batcher as SinkWorker would; returns what the requests
    carried."""
    now = [0.0]
    batcher = Batcher(max_inputs=MAX_INPUTS, linger_seconds=linger, clock=lambda: now[0],
                      max_wait_seconds=max_wait)
    stream = sink_order(commands)
    exhausted, paused = False, False
    rate, capacity, tokens = limit / 10, float(limit), 0.0
    sizes: list[int] = []
    offset = 0
    while True:
        # Between two slots the worker polls far more than one request carries.
        for _ in range(2000):
            held = len(batcher)
            if held >= buffered:
                paused = True
            elif paused and held <= buffered * 0.9:
                paused = False
            if paused or exhausted:
                break
            command = next(stream, None)
            if command is None:
                exhausted = True
                break
            offset += 1
            batcher.add(PendingCommand(SourceRecord("connector.commands", 0, offset, None, None),
                                       command))
        if exhausted and not len(batcher):
            break
        tokens = min(capacity, tokens + 1)
        while tokens >= 1:
            spare = int(tokens) * MAX_INPUTS >= len(batcher)
            work = batcher.take(spare=spare, everything=exhausted)
            if work is None:
                break
            tokens -= 1
            if not isinstance(work, EventWork):
                sizes.append(len(work.items))
        now[0] += 1 / rate
    return {"buffered": buffered, "attendance": sum(sizes), "requests": len(sizes),
            "inputs_per_request": sum(sizes) / max(len(sizes), 1), "seconds": now[0]}


def planned(commands: list[Command]) -> dict[str, Any]:
    """What a backfill sends for the same commands (connector.replay.requests: one event after
    another, each request's end marked), next to a lower bound no order can beat: per (event,
    state, identifier kind), the more of ceil(inputs / max) and the most inputs of one person
    (a request carries a person once); one request per event command."""
    by_event: dict[tuple[str, str], list[Command]] = collections.defaultdict(list)
    for command in commands:
        by_event[(command.externalAccountId, command.externalEventId)].append(command)
    count = RequestCount(MAX_INPUTS)
    for event_commands in by_event.values():
        for index, seal in plan_event(list(enumerate(event_commands)), MAX_INPUTS):
            count.add(event_commands[index], seal)
    inputs: collections.Counter[Any] = collections.Counter()
    per_person: collections.Counter[Any] = collections.Counter()
    events = 0
    for command in commands:
        body = command.body
        if not isinstance(body, Attendance):
            events += 1
            continue
        group = (command.externalAccountId, command.externalEventId,
                 subscriber_state(body), identifier_kind(body))
        inputs[group] += 1
        per_person[(group, person_of(body))] += 1
    most: collections.Counter[Any] = collections.Counter()
    for (group, _person), n in per_person.items():
        most[group] = max(most[group], n)
    bound = sum(max(-(-n // MAX_INPUTS), most[group]) for group, n in inputs.items())
    return {"planned_attendance_requests": count.attendance_requests,
            "planned_inputs_per_request": count.inputs_per_request,
            "planned_event_requests": count.event_requests,
            "bound_attendance_requests": bound,
            "bound_inputs_per_request": sum(inputs.values()) / bound if bound else 0.0,
            "event_commands": events}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--webinars", type=int, default=303)
    parser.add_argument("--limit", type=int, default=190, help="requests per 10 s")
    parser.add_argument("--buffered", type=int, nargs="+", default=[50_000, 100_000, 200_000])
    parser.add_argument("--max-wait", type=float, default=10.0,
                        help="the batcher's max_wait_seconds (age that ranks like a full batch)")
    parser.add_argument("--json")
    args = parser.parse_args()
    commands = command_stream(args.webinars)
    print(f"{len(commands):,} commands from {args.webinars} webinars; "
          f"{args.limit} requests / 10 s, {MAX_INPUTS} inputs per request at most")
    results = []
    for buffered in args.buffered:
        result = simulate(commands, buffered=buffered, limit=args.limit,
                          max_wait=args.max_wait)
        results.append(result)
        print(f"  held bound {buffered:>7,}: {result['inputs_per_request']:5.1f} inputs per "
              f"attendance request, {result['requests']:,} requests, "
              f"{result['seconds']:,.0f} s simulated")
    plan = planned(commands)
    results.append(plan)
    print(f"  a backfill's plan: {plan['planned_attendance_requests']:,} attendance requests "
          f"of {plan['planned_inputs_per_request']:.1f} inputs; no order does better than "
          f"{plan['bound_attendance_requests']:,} ({plan['bound_inputs_per_request']:.1f} "
          f"inputs); {plan['planned_event_requests']:,} event requests")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
