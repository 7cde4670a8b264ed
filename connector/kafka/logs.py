"""librdkafka's own log lines through the connector's logging (text or JSON, secrets masked).

Without a logger, librdkafka writes ``%3|1700000000.123|FAIL|rdkafka#producer-1| [thrd:...]:
...`` straight to stderr, outside the connector's format. Every client config the settings build
(`KafkaSettings.client_config()`, `.consumer_config()`, `.producer_config()`) carries
``"logger": client_logger()``: confluent-kafka then has librdkafka queue its log lines
(``log.queue``) and hands each to ``logger.log(level, "%s [%s] %s", facility, client, text)``
while that client is served: in ``poll()``, ``consume()``, ``flush()`` or ``close()`` of the
client that logged it. Lines of a client that is never served again are dropped with it.

Levels are confluent-kafka's mapping of syslog's: 0-2 CRITICAL, 3 ERROR, 4 WARNING, 5-6 INFO,
7 DEBUG. librdkafka still drops lines above its ``log_level`` property (6, INFO, by default) before
they get here.

:class:`LibrdkafkaLineFilter`, installed on the logger, rewrites each record as an
``event key=value`` line (one line; folded here)::

    librdkafka facility=FAIL client=rdkafka#producer-1 thread=127.0.0.1:9092/bootstrap
        text="127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: ..."

``text`` is JSON-quoted (the JSON log format reads it back as one field); ``thread`` is present
when librdkafka names it (``log.thread.name``, on by default).
"""

from __future__ import annotations

import json
import logging
import re

#: The logger every librdkafka client logs through (a child of ``connector``).
CLIENT_LOGGER = "connector.kafka.client"

_THREAD = re.compile(r"^\[thrd:(?P<thread>[^\]]*)\]:\s*")


class LibrdkafkaLineFilter(logging.Filter):
    """Rewrites confluent-kafka's ``"%s [%s] %s"`` (facility, client name, text) records as
    ``librdkafka facility=.. client=.. thread=.. text=".."``; other records pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.msg == "%s [%s] %s" and isinstance(args, tuple) and len(args) == 3:
            facility, client, text = (str(arg) for arg in args)
            match = _THREAD.match(text)
            if match:
                text = text[match.end():]
                record.msg = "librdkafka facility=%s client=%s thread=%s text=%s"
                record.args = (facility, client, match["thread"],
                               json.dumps(text, ensure_ascii=False))
            else:
                record.msg = "librdkafka facility=%s client=%s text=%s"
                record.args = (facility, client, json.dumps(text, ensure_ascii=False))
        return True


def client_logger() -> logging.Logger:
    """The logger for librdkafka clients (``"logger"`` of a client config), filter installed."""
    logger = logging.getLogger(CLIENT_LOGGER)
    if not any(isinstance(f, LibrdkafkaLineFilter) for f in logger.filters):
        logger.addFilter(LibrdkafkaLineFilter())
    return logger
