"""Memory of the normalizer's state per 100k open attendances (people with a connection open).

    .venv/bin/python bench/memory.py [--people 100000] [--json out.json]

Feeds Registered + Joined for N people of a live webinar through the pure AttendanceNormalizer
and measures the Python heap it holds (tracemalloc) and the process RSS growth.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import tracemalloc
from pathlib import Path
from typing import Any

from connector.normalize.normalizer import AttendanceNormalizer
from connector.serde.record import SourceRecord

T0 = 1_767_261_600_000
NS = "webinar.platform.v1"


def _activity(n: int, kind: str, body: dict[str, Any], at: int) -> dict[str, Any]:
    return {"activityId": f"a{n}-{kind}", "webinarId": f"w{n % 20}", "accountId": "acct",
            "occurredAt": at,
            "participant": {"participantId": f"p{n}", "email": f"person{n}@example.com",
                            "firstName": "Ada", "lastName": "Lovelace", "company": "Acme",
                            "hubspotContactId": None},
            "action": (f"{NS}.{kind}", body)}


def measure(people: int) -> dict[str, float]:
    webinars = {f"w{i}": {"webinarId": f"w{i}", "accountId": "acct", "status": "LIVE",
                          "scheduledStart": T0, "scheduledEnd": T0 + 3_600_000,
                          "actualEnd": None} for i in range(20)}
    source = SourceRecord("webinar.activity", 0, 0, None, b"", [])
    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    normalizer = AttendanceNormalizer(webinars.get)
    for n in range(people):
        normalizer.on_activity(_activity(n, "Registered", {"source": "form"}, T0 - 60_000),
                               source)
        normalizer.on_activity(_activity(n, "Joined", {"sessionId": f"s{n}", "device": "web"},
                                         T0 + n % 600_000), source)
    gc.collect()
    heap, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert len(normalizer.people) == people
    per_100k = 100_000 / people
    return {"people": people, "heap_mib_per_100k": heap / 2**20 * per_100k,
            "rss_growth_mib_per_100k": (rss_after - rss_before) / 1024 * per_100k}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--json")
    args = parser.parse_args()
    result = measure(args.people)
    print(f"memory: {result['heap_mib_per_100k']:.0f} MiB Python heap per 100k open attendances "
          f"(RSS growth {result['rss_growth_mib_per_100k']:.0f} MiB)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
