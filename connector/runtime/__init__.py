"""The Kafka drivers: the normalizer loop, the webinar table, the changelogs and the sink runner.

They hold no rules of their own: the attendance rules are in :mod:`connector.normalize`, the
HubSpot side in :mod:`connector.sink`, the clients in :mod:`connector.kafka`. Replay, chaos and
the demo assemble workers through this package.
"""
