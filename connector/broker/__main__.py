"""`python -m connector.broker`: run a local Kafka broker until Ctrl-C (or SIGTERM).

Prints the bootstrap address on stdout (and nothing else), so scripts can capture it:
    BOOTSTRAP=$(python -m connector.broker | head -1)
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from connector.broker.embedded import EmbeddedKafka, serve_forever
from connector.errors import BrokerError


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m connector.broker",
        description="Run a single-node Apache Kafka broker (KRaft) on a free loopback port.",
    )
    parser.add_argument("--heap", default="512m", help="JVM max heap (default: %(default)s)")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra server.properties entry; repeatable (e.g. auto.create.topics.enable=true)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def _parse_config(entries: list[str]) -> dict[str, str]:
    config: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--config expects KEY=VALUE, got {entry!r}")
        config[key.strip()] = value.strip()
    return config


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    stop = threading.Event()

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_sigterm)

    def on_ready(kafka: EmbeddedKafka) -> None:
        print(kafka.bootstrap_servers, flush=True)
        logging.getLogger(__name__).info(
            "broker_ready bootstrap=%s log=%s hint=ctrl-c_to_stop",
            kafka.bootstrap_servers,
            kafka.broker_log,
        )

    try:
        serve_forever(
            stop, on_ready=on_ready, heap=args.heap, extra_config=_parse_config(args.config)
        )
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C during startup; the broker is already stopped
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
