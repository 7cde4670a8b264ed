"""Publishes generated traffic the way the platform does: key = webinarId, value = framed Avro."""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol

from connector.sample.generator import Sample


class Encoder(Protocol):
    def encode(self, datum: Any) -> bytes: ...


def publish_sample(producer: Any, sample: Sample, *, activity_topic: str, webinar_topic: str,
                   activity_encoder: Encoder, webinar_encoder: Encoder,
                   flush_timeout: float = 60.0) -> Counter[str]:
    """Produce every record in publishing order; returns counts per kind and per action."""
    counts: Counter[str] = Counter()
    errors: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    for kind, record in sample.publish_order():
        if kind == "webinar":
            topic, value = webinar_topic, webinar_encoder.encode(record)
            counts[f"webinar:{record['status']}"] += 1
        else:
            topic, value = activity_topic, activity_encoder.encode(record)
            counts[f"activity:{record['action'][0].rsplit('.', 1)[-1]}"] += 1
        producer.produce(topic, value=value, key=record["webinarId"].encode(),
                         on_delivery=on_delivery)
        producer.poll(0)
    remaining = producer.flush(flush_timeout)
    if remaining or errors:
        raise RuntimeError(f"{remaining} records not delivered; errors: {errors[:3]}")
    return counts
