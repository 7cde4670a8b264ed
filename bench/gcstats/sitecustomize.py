"""Loaded by `bench/normalizer.py --gc-stats` into the normalizer it starts (PYTHONPATH): times
every garbage collection of the process and writes, at exit, collections and seconds per
generation as JSON to $BENCH_GC_STATS."""

from __future__ import annotations

import atexit
import gc
import json
import os
import time
from typing import Any

_PATH = os.environ.get("BENCH_GC_STATS")
_started: list[float] = [0.0]
_totals: dict[int, list[float]] = {0: [0, 0.0], 1: [0, 0.0], 2: [0, 0.0]}


def _time(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    total = _totals[info["generation"]]
    total[0] += 1
    total[1] += time.perf_counter() - _started[0]


def _write() -> None:
    if _PATH:
        with open(_PATH, "w") as out:
            json.dump({str(g): {"collections": int(c), "seconds": round(s, 3)}
                       for g, (c, s) in _totals.items()}, out)


if _PATH:
    gc.callbacks.append(_time)
    atexit.register(_write)
