"""``python -m connector.sink``: run the sink worker alone (tests run it as a subprocess).

Settings come from CONNECTOR_* variables as for ``connector``; SIGTERM/SIGINT set the stop event
(the worker drains and commits). ``connector run sink`` is the operator's entry point.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

from connector.config import load_settings
from connector.errors import ConfigError, ConnectorError
from connector.sink.runner import run_sink


def main() -> int:
    """Run until SIGTERM/SIGINT; 2 for configuration errors, 1 for other connector errors."""
    import logging

    logging.basicConfig(level=os.environ.get("SINK_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        run_sink(load_settings(os.environ), stop)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ConnectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
