"""Decode throughput per framing on one core (records/s), on generated platform records.

    .venv/bin/python bench/decode.py [--records 200000] [--json out.json]

Measures TopicDecoder.decode on SourceRecords built in memory (no broker): the cost the
normalizer pays per record for Avro. Confluent uses confluent-kafka's in-memory registry client,
so ids are resolved once and cached exactly as against a real registry.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid

from connector.sample import SampleSpec, generate
from connector.serde.catalog import ACTIVITY_SCHEMA, SchemaCatalog
from connector.serde.codec import Framing
from connector.serde.record import SourceRecord
from connector.serde.registry import SchemaRegistry
from connector.serde.topic import TopicDecoder, TopicFormat, build_codec


def measure(framing: Framing, records: int, catalog: SchemaCatalog) -> float:
    registry = SchemaRegistry.from_url(f"mock://{uuid.uuid4().hex}")
    codec = build_codec(TopicFormat(framing, ACTIVITY_SCHEMA), "webinar.activity", catalog,
                        registry)
    sample = generate(SampleSpec(seed=1, webinars=4, people_per_webinar=500))
    values = [codec.encode(r) for k, r in sample.publish_order() if k == "activity"]
    batch = [SourceRecord("webinar.activity", 0, i, b"web", values[i % len(values)])
             for i in range(records)]
    decoder = TopicDecoder(codec)
    decode = decoder.decode
    decode(batch[0])  # warm the schema caches
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for record in batch:
            decode(record)
        best = max(best, records / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says
    catalog = SchemaCatalog.from_directory()
    results = {f.value: measure(f, args.records, catalog) for f in Framing}
    for framing, rate in results.items():
        print(f"decode {framing:<14} {rate:>10,.0f} records/s (best of 3, one core)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"decode_records_per_s": results}, handle, indent=2)


if __name__ == "__main__":
    main()
