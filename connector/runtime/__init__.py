"""The Kafka drivers: the normalizer loop, the webinar table, the changelogs and the sink runner.

They hold no rules of their own: the attendance rules are in :mod:`connector.normalize`, the
HubSpot side in :mod:`connector.sink`, the clients in :mod:`connector.kafka`. Workers are handed
their parts and clients; :mod:`connector.runtime.assemble` builds a normalizer from settings
(``normalizer_worker``, ``run_normalizer``), and ``connector run``, replay, chaos and the demo
go through it.

The normalizer in parts: ``normalizer`` (the loop), ``normalizer_records`` (records of the
assigned partitions), ``normalizer_commit`` (one transaction per iteration),
``normalizer_rebalance`` (restore and drop on rebalance), ``normalizer_state`` (what they share)
and ``normalizer_clients`` (its Kafka clients by role). Beside it: ``table`` (the webinar
table), ``changelog`` (the state's changelog topics), ``sink`` (``run_sink``: the sink worker
built from settings) and ``workers`` (workers by role, run side by side).
"""
