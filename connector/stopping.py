"""The process's stop request, listened for before anything heavy is imported.

`connector` spends a second importing (confluent-kafka, pydantic, OpenTelemetry, ...). A SIGTERM
in that second must still end in a clean exit, so the entry point installs this tiny handler
first; the workers' own handler (connector.cli.common.install_stop_handlers) picks up a stop
requested before it was installed.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

STOP = threading.Event()


def _request_stop(_signum: int, _frame: FrameType | None) -> None:
    STOP.set()


def install() -> None:
    """Turn SIGTERM and SIGINT into a stop request (instead of an immediate exit)."""
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
