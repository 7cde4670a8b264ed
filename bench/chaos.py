"""The chaos run on demand (the CI form runs in tests/integration/test_chaos.py).

    .venv/bin/python bench/chaos.py            # long form: ~106k activities (100k+)
    .venv/bin/python bench/chaos.py --short --seed 7
    .venv/bin/python bench/chaos.py --ci --seed 12     # the CI test's plan, with its timeline
    .venv/bin/python bench/chaos.py --restarts 4 --hard 0.5   # any form, more broker restarts

Prints the fault timeline, the verdict and any worker exit the harness did not cause; exits 1 on
any difference from the oracle or such an exit. bench/soak.py runs the long form with ten broker
restarts over several seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from connector.chaos import ChaosPlan, ChaosResult, run_chaos

#: tests/integration/test_chaos.py's plan (seeds 11 and 12 there).
CI_PLAN = ChaosPlan(webinars=3, people_per_webinar=150, kills=3, broker_restarts=2,
                    hard_restarts=0.5, fault_horizon=15, timeout=240)
SHORT_PLAN = ChaosPlan()
LONG_PLAN = ChaosPlan(webinars=32, people_per_webinar=1000, kills=8, fault_horizon=60,
                      timeout=1200)


def summary(plan: ChaosPlan, result: ChaosResult) -> str:
    """One line: seed, size, faults, exits, time and the verdict."""
    return (f"seed={plan.seed} activities={result.activities:,} people={result.people:,} "
            f"restarts={result.broker_restarts} ({plan.hard_restart_count} hard) "
            f"kills={result.kills} unexpected_exits={len(result.unexpected_exits)} "
            f"seconds={result.seconds:.0f} {'PASS' if result.passed else 'FAIL'}")


def problems(result: ChaosResult) -> list[str]:
    """The differences from the oracle and the unexpected exits, one entry each."""
    return [f"DIFF {d}" for d in result.differences] + [
        f"EXIT {e.describe()}" for e in result.unexpected_exits]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--short", action="store_true", help="the small run (ChaosPlan defaults)")
    form.add_argument("--ci", action="store_true", help="tests/integration/test_chaos.py's plan")
    parser.add_argument("--restarts", type=int, help="broker restarts (default: the form's)")
    parser.add_argument("--hard", type=float, help="share of them that are hard (SIGKILL)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    plan = CI_PLAN if args.ci else SHORT_PLAN if args.short else LONG_PLAN
    plan = dataclasses.replace(
        plan, seed=args.seed,
        broker_restarts=plan.broker_restarts if args.restarts is None else args.restarts,
        hard_restarts=plan.hard_restarts if args.hard is None else args.hard)
    result = run_chaos(plan)
    for event in result.events:
        print(event)
    print(summary(plan, result))
    for problem in problems(result):
        print(problem)
    sys.exit(0 if result.passed else 1)


if __name__ == "__main__":
    main()
