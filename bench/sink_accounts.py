"""The multi-account sink (app mode): many HubSpot accounts, each with its own rate limit.

    .venv/bin/python -m bench.sink_accounts [--accounts 20 200] [--instances 1|2]
                                            [--windows 3] [--latency 0.25]
                                            [--backlog-rate 20000] [--partitions 8]
                                            [--max-in-flight N] [--linger-ms MS]
                                            [--json out.json]

What it measures. ``N`` platform accounts (acct-0001 ... acct-N) are installed, one each, into
``N`` HubSpot accounts of the sandbox (hub ids 70000001 ...), through the sandbox's own OAuth
(authorize page -> code -> ``OAuthClient.exchange_code`` -> ``Install.from_grant`` -> the
install registry topic): each is an OAuth install, so HubSpot (and the sandbox) allow it 110
requests per rolling 10 s, counted per installing account. The commands topic is filled before
the sink starts: per account a few webinars' EventUpserts, then attendance records, interleaved
across accounts and spread over the topic's partitions by the command key. Then ``--instances``
sink processes (`connector run sink`, app mode, one consumer group: separate OS processes, so
each has an interpreter of its own) apply them, and the sandbox's per-hub counters tell what
each account got:

    efficiency of an account = its attendance records applied per second in steady state
                               / (110 requests / 10 s x 100 inputs per request = 1,100/s)

Steady state, as bench/sink_efficiency.py: the first rate window after the first record was
applied (anywhere) is excluded (its burst is free, and start-up is not the sink's rate). Then
each hub's counters are read once (the start sweep, every read stamped with the sandbox's
monotonic clock at the instant it counted), and read again aimed at that hub's own stamp +
``--windows`` whole windows. The end read used is the latest one stamped at or before the mark,
and the count is divided by the whole windows it falls within (a read that landed after the
mark is divided by one window more): a count over at most k windows of a rolling limit can
never exceed k x the limit, so no per-account or aggregate figure can read above what the
limits allow (a part window could: it may catch a burst of freed slots). An end read a little
before the mark makes the figure a little low, never high; the mean shortfall is in the JSON
(tens of ms over 30 s). The start reads are spaced by a few round trips of a read (so every
hub's end reads fit before the next hub's mark): with 200 hubs the start sweep takes some
seconds, each hub is measured over its own whole windows, and the aggregate figures are the
sums of the accounts' rates.

Printed per run: accounts, instances, aggregate attendance records/s and requests/s (with the
requests/s the accounts' limits allow: N x 11), per-account efficiency (min, p10, median, and
how many reach 0.9), 429s (total and in the measured windows), CPU of the sink process(es), the
sandbox and the whole machine over the measured windows (100 % = one core), and accounts whose
backlog ran out. Where one process saturates shows as aggregate requests/s that stops growing
with N while the sink's CPU sits near 100 % of a core; per-account efficiency then falls as
1/N. Two instances in one group share the partitions (and so the accounts' commands); each
account's budget is enforced by the sandbox, not by the instances (each instance paces its own
share: the bench says whether they add up on this machine, where the broker, the sandbox and
the sinks share its cores).

Assumptions (not measurements of live HubSpot): the sandbox's latency model, 0.25 s + 1 ms per
batch input +/- 20 % by default (bench/sink_efficiency.py explains it); HubSpot's 110 / 10 s per
OAuth install; the sink's default settings (max_in_flight 64 per process, linger 200 ms). The
backlog is sized for ``--backlog-rate`` records/s per instance in all (default 20,000, about
twice what one process was seen to apply here), at most each account's ceiling: an account
whose backlog ran out during the run is counted as starved and its figure is a floor. Setup
(installs, filling the topic) is not measured. Needs a broker ($KAFKA_BOOTSTRAP_SERVERS, else
the embedded one) and Linux (CPU is read from /proc).
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import httpx
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from cryptography.fernet import Fernet

from bench.common import sandbox_process
from bench.sink_efficiency import HEADLINE_LATENCY, MAX_INPUTS, T0, WINDOW, Latency, broker
from connector.config import Settings, load_settings
from connector.installs import Install, oauth_client_from, open_registry
from connector.normalize.command import COMMAND_SCHEMA, Attendance, Command, EventUpsert
from connector.sandbox.config import DEFAULT_OAUTH_APP, FIRST_EXTRA_HUB_ID
from connector.serde.catalog import SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.topic import TopicFormat, build_codec

#: HubSpot's limit per OAuth install (the sandbox's default --oauth-window-limit).
OAUTH_LIMIT = 110
#: Attendance records per second one account's limit allows, every request a full batch.
ACCOUNT_CEILING = OAUTH_LIMIT / WINDOW * MAX_INPUTS
GOAL = 0.9
EVENTS_PER_ACCOUNT = 4
STARTUP_SECONDS = 180.0
STOP_SECONDS = 60.0
#: The end reads of a hub: the first sent this long before its mark, the others aimed to be
#: counted this long before it (sent earlier by the lag the first one took). The latest one
#: counted at or before the mark is kept: a read counted after it is no use, one counted 20 ms
#: before it costs 0.07 % of 3 windows; on a busy machine a read may be late by tens of ms.
END_READ_LEADS = (0.5, 0.1, 0.02)
#: Start reads are spaced by this many round trips of a read, so the end reads of every hub
#: fit between its mark and the next hub's with room to spare.
READS_PER_GAP = 5


class HubSample(NamedTuple):
    """One hub's counters: when the sandbox counted (its monotonic clock), attendance records
    applied, requests served, 429s answered; and how long after the read was sent it counted."""

    at: float
    applied: int
    requests: int
    limited: int
    lag: float = 0.0


# ----------------------------------------------------------------------------- arithmetic

def honest_rate(count: int, elapsed: float, window: float = WINDOW) -> float:
    """``count`` per second over the whole windows ``elapsed`` falls within (rounded up): a
    rolling limit admits at most the limit in any window, so k windows' worth can never read
    above the limit; a part window could (a burst of freed slots)."""
    whole = max(1, math.ceil(elapsed / window - 1e-9))
    return count / (whole * window)


def pick_end(samples: Sequence[HubSample], mark: float) -> HubSample:
    """The latest sample counted at or before ``mark``; if every one landed after it, the
    earliest (honest_rate then divides by one window more)."""
    before = [s for s in samples if s.at <= mark]
    if before:
        return max(before, key=lambda s: s.at)
    return min(samples, key=lambda s: s.at)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0-100) of ``values``: a value that was measured,
    never one interpolated between two accounts."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(efficiencies: Sequence[float], goal: float = GOAL) -> dict[str, Any]:
    """Per-account efficiency in a few figures: min, p10, median, and how many reach ``goal``."""
    return {"min": round(min(efficiencies), 3), "p10": round(percentile(efficiencies, 10), 3),
            "median": round(percentile(efficiencies, 50), 3),
            "at_goal": sum(1 for e in efficiencies if e >= goal), "accounts": len(efficiencies)}


def backlog_per_account(accounts: int, instances: int, windows: int,
                        backlog_rate: float) -> int:
    """Attendance records per account: more than the run can apply, assuming at most
    ``backlog_rate`` records/s per instance in all and never more than an account's ceiling,
    over the excluded window, the measured ones and one more, with 20 % to spare."""
    rate = min(ACCOUNT_CEILING, backlog_rate * instances / accounts)
    return math.ceil(rate * WINDOW * (windows + 2) * 1.2)


# ----------------------------------------------------------------------------- setup

def platform_accounts(count: int) -> list[tuple[str, int]]:
    """(platform account, hub id): acct-0001 -> 70000001, ..."""
    return [(f"acct-{i + 1:04d}", FIRST_EXTRA_HUB_ID + i) for i in range(count)]


def app_env(bootstrap: str, sandbox_url: str, topic: str, max_in_flight: int | None,
            linger_ms: int | None) -> dict[str, str]:
    """CONNECTOR_* variables of app mode against the sandbox's OAuth app, on fresh topics and
    a fresh group: the sink processes get these, and this process reads the same settings."""
    tag = uuid.uuid4().hex[:8]
    env = {
        "CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "CONNECTOR_TOPICS__COMMANDS": topic,
        "CONNECTOR_TOPICS__COMMANDS_DLQ": f"{topic}.dlq",
        "CONNECTOR_TOPICS__INSTALLS": f"bench-installs-{tag}",
        "CONNECTOR_SINK__GROUP_ID": f"bench-accounts-{tag}",
        "CONNECTOR_HUBSPOT__MODE": "app",
        "CONNECTOR_HUBSPOT__BASE_URL": sandbox_url,
        "CONNECTOR_HUBSPOT__AUTHORIZE_URL": f"{sandbox_url}/oauth/authorize",
        "CONNECTOR_HUBSPOT__CLIENT_ID": DEFAULT_OAUTH_APP.client_id,
        "CONNECTOR_HUBSPOT__CLIENT_SECRET": DEFAULT_OAUTH_APP.client_secret,
        "CONNECTOR_HUBSPOT__APP_ID": str(DEFAULT_OAUTH_APP.app_id),
        "CONNECTOR_HUBSPOT__REDIRECT_URL": DEFAULT_OAUTH_APP.redirect_uris[0],
        "CONNECTOR_HUBSPOT__SCOPES": " ".join(sorted(DEFAULT_OAUTH_APP.scopes)),
        "CONNECTOR_INSTALLS__ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "CONNECTOR_INSTALLS__STATE_SECRET": uuid.uuid4().hex,
        "CONNECTOR_INSTALLS__INSTALL_LINK_SECRET": uuid.uuid4().hex,
        "CONNECTOR_TELEMETRY__METRICS": "none",
        "CONNECTOR_TELEMETRY__LOG_LEVEL": "WARNING",
    }
    if max_in_flight is not None:
        env["CONNECTOR_SINK__MAX_IN_FLIGHT"] = str(max_in_flight)
    if linger_ms is not None:
        env["CONNECTOR_SINK__LINGER_MS"] = str(linger_ms)
    return env


def install_all(settings: Settings, pairs: Sequence[tuple[str, int]]) -> None:
    """Install the app for each platform account into its hub, as the OAuth callback does
    (the sandbox's authorize page gives a code, the app's OAuth client exchanges it), and
    write the installs to the registry topic the sinks read. The HTTP install flow itself is
    covered by connector/demo/installs.py; here it would only add serve to the setup."""
    with contextlib.ExitStack() as stack:
        oauth = stack.enter_context(oauth_client_from(settings))
        registry = stack.enter_context(open_registry(settings))
        http = stack.enter_context(httpx.Client(follow_redirects=False, timeout=30))
        for account, hub_id in pairs:
            answer = http.get(f"{oauth.authorize_url('bench')}&hub_id={hub_id}")
            location = answer.headers.get("location", "")
            codes = parse_qs(urlsplit(location).query).get("code")
            if answer.status_code != 302 or not codes:
                raise RuntimeError(f"the sandbox refused the install of {hub_id}: "
                                   f"{answer.status_code} {answer.text[:200]}")
            grant = oauth.exchange_code(codes[0])
            registry.writer.put(Install.from_grant(account, grant, now=time.time()))


def commands_for(pairs: Sequence[tuple[str, int]], per_account: int) -> Iterator[Command]:
    """Per account its webinars' upserts, then ``per_account`` attendance records each,
    interleaved across accounts so the sink meets every account from its first fetch."""
    for account, _ in pairs:
        for e in range(EVENTS_PER_ACCOUNT):
            yield Command(f"{account}-w{e}", account, EventUpsert(f"{account} {e}", "Org",
                                                                  "WEBINAR"))
    for n in range(per_account):
        state = "ATTENDED" if n % 3 == 0 else "REGISTERED"
        joined = T0 + n if state == "ATTENDED" else None
        for account, _ in pairs:
            yield Command(f"{account}-w{n % EVENTS_PER_ACCOUNT}", account, Attendance(
                state, None, f"person{n}@{account}.example.com", T0 + n, {"firstname": f"P{n}"},
                joinedAt=joined, leftAt=joined + 3_600_000 if joined else None))


def produce(bootstrap: str, topic: str, commands: Iterable[Command], partitions: int) -> int:
    """Create ``topic`` and write ``commands`` to it, keyed by the command key; how many."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    codec = build_codec(TopicFormat(Framing.SINGLE_OBJECT, COMMAND_SCHEMA), topic,
                        SchemaCatalog.from_directory())
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50,
                         "queue.buffering.max.messages": 1_000_000})
    count = 0
    for command in commands:
        value = codec.encode(command.to_avro())
        while True:
            try:
                producer.produce(topic, key=command.key, value=value)
                break
            except BufferError:
                producer.poll(0.5)
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError(f"the commands did not all reach {topic}")
    return count


# ----------------------------------------------------------------------------- processes, CPU

@dataclass
class SinkProcess:
    """One `connector run sink` process and the file its stderr goes to."""

    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def check(self) -> None:
        """A sink that exited before the run ended failed: say so, with its last words."""
        if self.process.poll() is None:
            return
        self.log.seek(0)
        tail = self.log.read().decode(errors="replace")[-2000:]
        raise RuntimeError(f"sink process {self.process.pid} exited with "
                           f"{self.process.returncode}: {tail}")


@contextlib.contextmanager
def sink_processes(env: dict[str, str], instances: int) -> Iterator[list[SinkProcess]]:
    """``instances`` x `connector run sink` (app mode, one group), stopped with SIGTERM (they
    drain and commit) at the end; their stderr goes to a temporary file shown on failure."""
    sinks: list[SinkProcess] = []
    with contextlib.ExitStack() as logs:
        try:
            for _ in range(instances):
                log = logs.enter_context(tempfile.TemporaryFile())
                sinks.append(SinkProcess(subprocess.Popen(
                    [sys.executable, "-m", "connector", "--log-level", "WARNING", "run", "sink"],
                    env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=log), log))
            yield sinks
        finally:
            for sink in sinks:
                sink.process.terminate()
            for sink in sinks:
                try:
                    sink.process.wait(STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    sink.process.kill()
                    sink.process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid``, every thread (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent busy (not idle nor waiting on I/O)."""
    with open("/proc/stat") as handle:
        ticks = [int(x) for x in handle.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def child_pid(word: str) -> int | None:
    """The pid of this process's child whose command line holds ``word`` (the sandbox, which
    bench.common starts without handing its pid out)."""
    me = os.getpid()
    for tid in os.listdir(f"/proc/{me}/task"):
        with open(f"/proc/{me}/task/{tid}/children") as handle:
            for pid in handle.read().split():
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    if word.encode() in cmdline.read().split(b"\0"):
                        return int(pid)
    return None


@dataclass
class CpuMeter:
    """CPU of the sinks, the sandbox and the machine between :meth:`start` and :meth:`stop`,
    as a share of one core."""

    sinks: list[int]
    sandbox: int | None

    def read(self) -> tuple[float, list[float], float, float]:
        """(monotonic now, each sink's CPU s, the sandbox's CPU s, the machine's busy s)."""
        sandbox = cpu_seconds(self.sandbox) if self.sandbox is not None else 0.0
        return (time.monotonic(), [cpu_seconds(pid) for pid in self.sinks], sandbox,
                machine_busy_seconds())

    @staticmethod
    def shares(before: tuple[float, list[float], float, float],
               after: tuple[float, list[float], float, float]) -> dict[str, Any]:
        """Percent of one core each used over the interval."""
        elapsed = after[0] - before[0]

        def pct(seconds: float) -> float:
            return round(100 * seconds / elapsed, 1)

        return {"sink_cpu_pct": [pct(b - a) for a, b in zip(before[1], after[1], strict=True)],
                "sandbox_cpu_pct": pct(after[2] - before[2]),
                "machine_cpu_pct": pct(after[3] - before[3]), "cores": os.cpu_count()}


# ----------------------------------------------------------------------------- measuring

class Counters:
    """The sandbox's counters over one kept-alive connection (each read stamped by it)."""

    def __init__(self, url: str) -> None:
        self._http = httpx.Client(base_url=url, timeout=30)

    def close(self) -> None:
        self._http.close()

    def read(self, hub_id: int | None = None) -> HubSample:
        """One hub's counters (every hub's without ``hub_id``)."""
        sent = time.monotonic()
        params = {"hub_id": str(hub_id)} if hub_id is not None else {}
        data = self._http.get("/_sandbox/counters", params=params).json()
        at = float(data["monotonic"])
        return HubSample(at, int(data["interactions"]), int(data["requests"]),
                         int(data["rateLimited"]), max(0.0, at - sent))

    def round_trip(self, hub_ids: Sequence[int], reads: int = 10) -> float:
        """The median time one hub's read takes now, end to end (spaces the start reads)."""
        times = []
        for n in range(reads):
            sent = time.monotonic()
            self.read(hub_ids[n % len(hub_ids)])
            times.append(time.monotonic() - sent)
        return percentile(times, 50)

    def read_at(self, hub_id: int, at: float) -> HubSample:
        """One hub's counters, the read sent at ``at`` (monotonic; at once if that is past)."""
        time.sleep(max(0.0, at - time.monotonic()))
        return self.read(hub_id)


def wait_first_applied(counters: Counters, sinks: Sequence[SinkProcess]) -> float:
    """When the sandbox first held an applied record (its clock): steady state starts one
    window later."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        for sink in sinks:
            sink.check()
        sample = counters.read()
        if sample.applied > 0:
            return sample.at
        time.sleep(0.2)
    raise RuntimeError(f"nothing applied within {STARTUP_SECONDS:.0f}s")


def end_samples(counters: Counters, hubs: Sequence[int], marks: dict[int, float]
                ) -> dict[int, list[HubSample]]:
    """Per hub the reads of END_READ_LEADS: the first sent well before its mark (kept should
    the others land late), the others aimed to be counted just before it. The reads of all hubs
    go in the order of their aims, so one hub's reads never delay the next hub's by a sweep."""
    queue = [(marks[hub] - END_READ_LEADS[0], hub) for hub in hubs]  # (aim, hub)
    heapq.heapify(queue)
    samples: dict[int, list[HubSample]] = {hub: [] for hub in hubs}
    while queue:
        aim, hub = heapq.heappop(queue)
        samples[hub].append(counters.read_at(hub, aim))
        if len(samples[hub]) == 1:
            lag = samples[hub][0].lag
            for lead in END_READ_LEADS[1:]:
                heapq.heappush(queue, (marks[hub] - lag - lead, hub))
    return samples


def measure(counters: Counters, hubs: Sequence[int], windows: int, per_account: int,
            sinks: Sequence[SinkProcess], meter: CpuMeter) -> dict[str, Any]:
    """Every hub's applied records, requests and 429s over ``windows`` whole windows of its
    own, starting one window after the first record was applied anywhere."""
    first = wait_first_applied(counters, sinks)
    gap = READS_PER_GAP * counters.round_trip(hubs)
    begin = max(first + WINDOW, time.monotonic())
    cpu_before = meter.read()
    starts = {hub: counters.read_at(hub, begin + n * gap) for n, hub in enumerate(hubs)}
    marks = {hub: starts[hub].at + windows * WINDOW for hub in hubs}
    ends = {hub: pick_end(samples, marks[hub])
            for hub, samples in end_samples(counters, hubs, marks).items()}
    cpu_after = meter.read()
    for sink in sinks:
        sink.check()
    total = counters.read()
    return per_hub_figures(starts, ends, windows, per_account) | meter.shares(
        cpu_before, cpu_after) | {"http_429": total.limited, "read_gap_s": round(gap, 4)}


def per_hub_figures(starts: dict[int, HubSample], ends: dict[int, HubSample], windows: int,
                    per_account: int) -> dict[str, Any]:
    """Aggregate and per-account figures from each hub's start and end counts."""
    rates, requests, limited, shortfalls, late, starved = {}, 0.0, 0, [], 0, 0
    for hub, start in starts.items():
        end = ends[hub]
        elapsed = end.at - start.at
        rates[hub] = honest_rate(end.applied - start.applied, elapsed)
        requests += honest_rate(end.requests - start.requests, elapsed)
        limited += end.limited - start.limited
        shortfalls.append(windows * WINDOW - elapsed)
        late += elapsed > windows * WINDOW
        starved += end.applied >= 0.98 * per_account
    efficiencies = [rate / ACCOUNT_CEILING for rate in rates.values()]
    return {"records_per_s": round(sum(rates.values()), 1),
            "requests_per_s": round(requests, 1),
            "inputs_per_request": round(sum(rates.values()) / requests, 1) if requests else 0.0,
            "allowed_requests_per_s": len(starts) * OAUTH_LIMIT / WINDOW,
            "efficiency": summarize(efficiencies),
            "per_account_efficiency": {str(h): round(r / ACCOUNT_CEILING, 4)
                                       for h, r in rates.items()},
            "http_429_measured": limited, "measured_seconds": windows * WINDOW,
            "mean_end_shortfall_s": round(sum(shortfalls) / len(shortfalls), 3),
            "late_end_reads": late, "starved_accounts": starved,
            "backlog_per_account": per_account}


def run_accounts(bootstrap: str, accounts: int, instances: int, windows: int,
                 latency: Latency, options: argparse.Namespace) -> dict[str, Any]:
    """One run: a sandbox with ``accounts`` HubSpot accounts, the installs, a full commands
    topic, ``instances`` sink processes, the measurement."""
    pairs = platform_accounts(accounts)
    per_account = backlog_per_account(accounts, instances, windows, options.backlog_rate)
    topic = f"bench-accounts-{uuid.uuid4().hex[:8]}"
    sandbox_options = ["--accounts", str(accounts), "--oauth-window-limit", str(OAUTH_LIMIT),
                       *latency.sandbox_options()]
    with sandbox_process(None, sandbox_options) as (url, _token):
        env = app_env(bootstrap, url, topic, options.max_in_flight, options.linger_ms)
        install_all(load_settings(env), pairs)
        produced = produce(bootstrap, topic, commands_for(pairs, per_account),
                           options.partitions)
        counters = Counters(url)
        try:
            with sink_processes(env, instances) as sinks:
                meter = CpuMeter([sink.process.pid for sink in sinks], child_pid("sandbox"))
                result = measure(counters, [hub for _, hub in pairs], windows, per_account,
                                 sinks, meter)
        finally:
            counters.close()
    return {"accounts": accounts, "instances": instances, "instances_are": "processes",
            "latency": latency.as_dict(), "account_limit_per_10s": OAUTH_LIMIT,
            "account_ceiling_records_per_s": ACCOUNT_CEILING, "commands_produced": produced,
            "max_in_flight": options.max_in_flight or "default",
            "linger_ms": options.linger_ms or "default", **result}


def line(result: dict[str, Any]) -> str:
    """The one line a run prints."""
    eff = result["efficiency"]
    share = 100 * result["requests_per_s"] / result["allowed_requests_per_s"]
    sinks = "+".join(f"{pct:.0f}" for pct in result["sink_cpu_pct"])
    return (f"accounts={result['accounts']:>4} instances={result['instances']} "
            f"latency={result['latency']['base_s']:.3f}s "
            f"records/s={result['records_per_s']:>8} requests/s={result['requests_per_s']:>6} "
            f"of {result['allowed_requests_per_s']:g} allowed ({share:.1f}%) "
            f"inputs/request={result['inputs_per_request']} "
            f"efficiency min={eff['min']:.3f} p10={eff['p10']:.3f} median={eff['median']:.3f} "
            f">={GOAL}: {eff['at_goal']}/{eff['accounts']} "
            f"429s={result['http_429']} (measured {result['http_429_measured']}) "
            f"cpu% sink={sinks} sandbox={result['sandbox_cpu_pct']:.0f} "
            f"machine={result['machine_cpu_pct']:.0f}/{100 * (result['cores'] or 1)} "
            f"starved={result['starved_accounts']} late_reads={result['late_end_reads']}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[20, 200], metavar="N",
                        help="HubSpot accounts per run (one run each)")
    parser.add_argument("--instances", type=int, default=1, metavar="N",
                        help="sink processes in one consumer group")
    parser.add_argument("--windows", type=int, default=3,
                        help="whole rate windows (10 s) measured per run, after the first")
    parser.add_argument("--latency", type=float, default=HEADLINE_LATENCY, metavar="SECONDS",
                        help="the sandbox's latency base (+ 1 ms per input, +/- 20%%; 0 = off)")
    parser.add_argument("--backlog-rate", type=float, default=20_000.0, metavar="RECORDS",
                        help="records/s per instance the backlog is sized for (all accounts)")
    parser.add_argument("--partitions", type=int, default=8, help="of the commands topic")
    parser.add_argument("--max-in-flight", type=int, default=None,
                        help="the sink's max_in_flight (default: the setting's default)")
    parser.add_argument("--linger-ms", type=int, default=None,
                        help="the sink's linger_ms (default: the setting's default, 200)")
    parser.add_argument("--json", help="also write the results here")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    results = []
    with broker() as bootstrap:
        for accounts in args.accounts:
            result = run_accounts(bootstrap, accounts, args.instances, args.windows,
                                  Latency(args.latency), args)
            results.append(result)
            print(line(result), flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
