"""The chaos run on demand (the short form runs in CI as tests/integration/test_chaos.py).

    .venv/bin/python bench/chaos.py            # long form: ~106k activities (100k+)
    .venv/bin/python bench/chaos.py --short --seed 7

Prints the fault timeline and the verdict; exits 1 on any difference from the oracle.
"""

from __future__ import annotations

import argparse
import logging
import sys

from connector.chaos import ChaosPlan, run_chaos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--short", action="store_true", help="the CI-sized run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    plan = ChaosPlan(seed=args.seed) if args.short else ChaosPlan(
        seed=args.seed, webinars=32, people_per_webinar=1000, kills=8, fault_horizon=60,
        timeout=1200)
    result = run_chaos(plan)
    for event in result.events:
        print(event)
    print(f"{result.activities:,} activities, {result.people:,} people, {result.seconds:.0f}s")
    for difference in result.differences:
        print("DIFF", difference)
    print("PASSED" if result.passed else "FAILED")
    sys.exit(0 if result.passed else 1)


if __name__ == "__main__":
    main()
