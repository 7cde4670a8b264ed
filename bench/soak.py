"""Soak (not CI): the long chaos form with many broker restarts, graceful and hard, over
>= 100k activities; one line per seed.

    .venv/bin/python -m bench.soak --seed 1 2 3            # 10 restarts, half hard, 100k+ each
    .venv/bin/python -m bench.soak --seed 4 --restarts 10 --activities 100000 --hard 0.5

Each run is bench/chaos.py's long form (32 webinars, 8 worker kills, a HubSpot outage, a 429
storm, random 503s) with the input published evenly over the fault horizon while the restarts
happen, so every restart hits a live stream; the horizon gives each restart a slice of its own
(`--horizon`, default 15 s a restart, at least 60 s). A run passes when HubSpot and the
dead-letter topics match the oracle and no worker exited unless the harness killed or stopped
it. A failed run (any run with --timeline) is followed by its differences, its unexpected exits
(with the end of the worker's log) and its timeline; exits 1 if any run failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
import tempfile
from pathlib import Path

from bench.chaos import LONG_PLAN, problems, summary
from connector.chaos import ChaosPlan, run_chaos

ACTIVITIES_PER_PERSON = 3.25  # the generator's 3.33-3.37 (seeds 1-11), rounded down: not fewer
SECONDS_PER_RESTART = 15.0


def soak_plan(seed: int, activities: int, restarts: int, hard: float,
              horizon: float | None = None) -> ChaosPlan:
    """The long form sized to `activities` with `restarts` broker restarts spread over it."""
    people = math.ceil(activities / LONG_PLAN.webinars / ACTIVITIES_PER_PERSON)
    horizon = horizon or max(LONG_PLAN.fault_horizon, restarts * SECONDS_PER_RESTART)
    return dataclasses.replace(LONG_PLAN, seed=seed, people_per_webinar=people,
                               broker_restarts=restarts, hard_restarts=hard,
                               fault_horizon=horizon, publish_seconds=horizon,
                               timeout=horizon + LONG_PLAN.timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, nargs="+", default=[1], help="one run per seed")
    parser.add_argument("--restarts", type=int, default=10, help="broker restarts per run")
    parser.add_argument("--hard", type=float, default=0.5, help="share of hard (SIGKILL) ones")
    parser.add_argument("--activities", type=int, default=100_000, help="at least, per run")
    parser.add_argument("--horizon", type=float, help="seconds over which faults happen")
    parser.add_argument("--timeline", action="store_true", help="print every run's timeline")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    failed = 0
    for seed in args.seed:
        plan = soak_plan(seed, args.activities, args.restarts, args.hard, args.horizon)
        logs = Path(tempfile.mkdtemp(prefix=f"soak-seed{seed}-"))
        result = run_chaos(plan, logs)
        print(summary(plan, result), flush=True)
        failed += not result.passed
        if not result.passed or args.timeline:
            for line in [*problems(result), f"worker logs: {logs}", *result.events]:
                print(f"    {line}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
