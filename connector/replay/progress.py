"""Progress of a long step: a bar with rate and ETA on a terminal, plain lines otherwise.

    progress = Progress.start("normalize", total=12_000, tty=sys.stdout.isatty())
    progress.update(done)      # absolute count, as often as you like
    progress.close()           # a last line with the count, elapsed time and rate

On a terminal it is click's progressbar (position, percent, ETA, and the rate as its item text);
in a log or a pipe it prints `label: done/total (pct) rate/s eta` at most every `every` seconds.
The clock is injected (tests never wait).
"""

from __future__ import annotations

import time
from typing import Any, TextIO

import click

from connector.clock import Clock


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" \
        if minutes else f"{secs}s"


class Progress:
    """One step's progress (see the module docstring)."""

    def __init__(self, label: str, total: int, *, tty: bool, out: TextIO | None = None,
                 clock: Clock = time.monotonic, every: float = 5.0):
        self.label = label
        self.total = max(total, 0)
        self.done = 0
        self._clock = clock
        self._started = clock()
        self._every = every
        self._last_line = self._started
        self._out = out
        self._bar: Any = None
        if tty:
            self._bar = click.progressbar(length=max(self.total, 1), label=label, file=out,
                                          show_eta=True, show_percent=True, show_pos=True,
                                          item_show_func=lambda _: self.rate_text())
            self._bar.__enter__()

    @classmethod
    def start(cls, label: str, total: int, *, tty: bool, **kwargs: Any) -> Progress:
        return cls(label, total, tty=tty, **kwargs)

    def rate(self) -> float:
        elapsed = self._clock() - self._started
        return self.done / elapsed if elapsed > 0 else 0.0

    def rate_text(self) -> str:
        return f"{self.rate():,.0f}/s"

    def eta(self) -> float | None:
        rate = self.rate()
        return (self.total - self.done) / rate if rate > 0 and self.total else None

    def line(self) -> str:
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        eta = self.eta()
        eta_text = f" eta {duration(eta)}" if eta is not None and self.done < self.total else ""
        return f"{self.label}: {self.done:,}/{self.total:,}{pct} {self.rate_text()}{eta_text}"

    def update(self, done: int) -> None:
        """Set the absolute count (never goes backwards)."""
        done = min(max(done, self.done), self.total) if self.total else max(done, self.done)
        step, self.done = done - self.done, done
        if self._bar is not None:
            if step:
                self._bar.update(step)
            return
        now = self._clock()
        if now - self._last_line >= self._every:
            self._last_line = now
            click.echo(self.line(), file=self._out)

    def close(self) -> None:
        elapsed = self._clock() - self._started
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
        click.echo(f"{self.label}: {self.done:,}/{self.total:,} done in {duration(elapsed)} "
                   f"({self.rate_text()})", file=self._out)
