"""The one clock type: a function that returns seconds (``time.monotonic`` in production).

Pure parts (budgets, batchers, retry policies, stall watches) take a clock instead of reading
the time themselves, so tests drive them with a fake one and never sleep.
"""

from __future__ import annotations

from collections.abc import Callable

#: Seconds from an arbitrary origin, never going backwards (``time.monotonic``).
Clock = Callable[[], float]
