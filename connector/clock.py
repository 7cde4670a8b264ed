"""The one clock type: a function that returns seconds (``time.monotonic`` in production, or
``time.time`` where the seconds must be epoch time: the sandbox's timestamps).

Pure parts (budgets, batchers, retry policies, stall watches) take a clock instead of reading
the time themselves, so tests drive them with a fake one and never sleep.
"""

from __future__ import annotations

from collections.abc import Callable

#: Seconds from an origin the caller picks (``time.monotonic``, or ``time.time`` for epoch time).
Clock = Callable[[], float]
