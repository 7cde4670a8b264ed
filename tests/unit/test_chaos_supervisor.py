"""The chaos supervisor's workers do not outlive it (a killed test run left them spinning)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from connector.chaos.supervisor import Supervisor

PARENT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from connector.chaos.supervisor import Supervisor
    worker = Supervisor("sleeper", {}, Path(sys.argv[1]),
                        command=[sys.executable, "-c", "import time; time.sleep(120)"])
    worker.ensure_running()
    print(worker.process.pid, flush=True)
    time.sleep(120)
""")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_dies_when_its_supervisor_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    with parent.stdout:
        child = int(parent.stdout.readline())
    assert _alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = _alive(child)
    if alive:
        os.kill(child, signal.SIGKILL)
    assert not alive, "the worker outlived its killed supervisor"


def test_stop_ends_the_worker(tmp_path: Path) -> None:
    worker = Supervisor("sleeper", {}, tmp_path,
                        command=[sys.executable, "-c", "import time; time.sleep(120)"])
    worker.ensure_running()
    assert worker.process is not None and worker.process.poll() is None
    assert worker.stop() == -signal.SIGTERM
    assert worker.starts == 1
