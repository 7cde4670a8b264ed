"""A local Kafka cluster for the demo: the real broker where Java is present, else librdkafka's
mock cluster (and it says which)."""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Iterator

from connector.errors import ConnectorError

#: Where the demo says what it does (the command gives ``click.echo``).
Say = Callable[[str], None]


@contextlib.contextmanager
def local_kafka(broker: str, say: Say) -> Iterator[str]:
    """The bootstrap servers of a local cluster, running until the block ends.

    ``broker``: ``kafka`` (a real broker; needs Java), ``mock`` (librdkafka's mock cluster) or
    ``auto`` (kafka where Java is present, else mock).
    """
    if broker == "auto":
        broker = "kafka" if shutil.which("java") is not None else "mock"
        if broker == "mock":
            say("Java not found: using librdkafka's built-in mock cluster instead of a "
                "real broker (in memory; `make setup` installs Java for the real one)")
    if broker == "mock":
        from connector.broker.mock import mock_kafka

        say("starting librdkafka's mock Kafka cluster (a test double, in memory; "
            "topics get its default partition count) ...")
        logging.getLogger("connector.kafka.admin").setLevel(logging.ERROR)
        with mock_kafka() as bootstrap:
            yield bootstrap
        return
    if shutil.which("java") is None:
        raise ConnectorError("--broker kafka runs a real Kafka broker and needs Java 17+ "
                             "(`make setup` installs it; or use --broker mock)")
    from connector.broker import EmbeddedKafka

    say("starting a local Apache Kafka broker (KRaft, from Maven Central) ...")
    with EmbeddedKafka() as kafka:
        yield kafka.bootstrap_servers
