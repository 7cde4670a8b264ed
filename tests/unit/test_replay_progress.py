"""Progress: plain lines with rate and ETA off a terminal, click's bar on one; clock injected."""

from __future__ import annotations

import io

from connector.replay.progress import Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_at_most_every_interval_with_rate_and_eta() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = Progress("normalize", 1000, tty=False, out=out, clock=clock, every=5.0)
    clock.now += 2
    progress.update(100)  # too soon for a line
    clock.now += 3
    progress.update(250)
    clock.now += 1
    progress.update(300)  # too soon again
    clock.now += 4
    progress.update(1000)
    progress.close()
    assert out.getvalue().splitlines() == [
        "normalize: 250/1,000 (25%) 50/s eta 15s",
        "normalize: 1,000/1,000 (100%) 100/s",
        "normalize: 1,000/1,000 done in 10s (100/s)",
    ]


def test_counts_never_go_backwards_nor_past_the_total() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = Progress("apply", 10, tty=False, out=out, clock=clock)
    progress.update(7)
    progress.update(3)
    assert progress.done == 7
    progress.update(50)
    assert progress.done == 10


def test_on_a_terminal_a_bar_with_eta_and_rate() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = Progress("copy", 400, tty=True, out=out, clock=clock)
    clock.now += 2
    progress.update(200)
    assert progress.rate_text() == "100/s" and progress.eta() == 2.0
    progress.close()
    text = out.getvalue()
    assert "copy" in text and "copy: 200/400 done in 2s (100/s)" in text


def test_an_empty_step() -> None:
    out = io.StringIO()
    progress = Progress("state", 0, tty=False, out=out, clock=FakeClock())
    progress.close()
    assert out.getvalue() == "state: 0/0 done in 0s (0/s)\n"
