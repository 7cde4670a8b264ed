"""The chaos harness tells a crash from a kill it ordered, never leaves a process behind, and
spreads its broker restarts (graceful and hard) over the fault horizon."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connector.broker import embedded
from connector.chaos.plan import RESTART_EARLIEST, ChaosPlan, schedule
from connector.chaos.supervisor import Supervisor, stop_all

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
# Ignores SIGTERM, says so first (the supervisor must not SIGTERM before the handler is set).
STUBBORN = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
            "signal.SIG_IGN); print('ready', flush=True); time.sleep(120)"]
CRASHER = [sys.executable, "-c", "import sys; print('boom: the broker went away'); sys.exit(3)"]


def _wait_exited(worker: Supervisor) -> None:
    assert worker.process is not None
    worker.process.wait(30)


def _wait_for_line(worker: Supervisor, text: str) -> None:
    deadline = time.monotonic() + 30
    while text not in worker.log_path.read_text():
        assert time.monotonic() < deadline, worker.log_path.read_text()
        time.sleep(0.02)


def test_a_crash_is_recorded_with_its_log_and_the_worker_restarted(tmp_path: Path) -> None:
    with Supervisor("crasher", {}, tmp_path, command=CRASHER) as worker:
        worker.ensure_running()
        _wait_exited(worker)
        worker.ensure_running()
        _wait_exited(worker)
        worker.check()
    assert worker.starts == 2
    assert [(e.cause, e.returncode) for e in worker.unexpected_exits] == [("crashed", 3)] * 2
    assert "boom: the broker went away" in worker.exits[0].log_tail
    assert "crashed returncode=3" in worker.exits[0].describe()


def test_a_kill_by_the_harness_is_expected(tmp_path: Path) -> None:
    with Supervisor("sleeper", {}, tmp_path, command=SLEEPER) as worker:
        worker.ensure_running()
        worker.kill()
        worker.ensure_running()
    assert worker.kills == 1 and worker.starts == 2
    assert [e.cause for e in worker.exits] == ["killed", "closed"]
    assert worker.exits[0].returncode == -signal.SIGKILL
    assert worker.unexpected_exits == []


def test_killing_a_worker_that_already_crashed_records_the_crash(tmp_path: Path) -> None:
    with Supervisor("crasher", {}, tmp_path, command=CRASHER) as worker:
        worker.ensure_running()
        _wait_exited(worker)
        worker.kill()
    assert worker.kills == 0
    assert [e.cause for e in worker.exits] == ["crashed"]


def test_a_worker_that_ignores_sigterm_is_killed_after_the_bound(tmp_path: Path) -> None:
    worker = Supervisor("stubborn", {}, tmp_path, command=STUBBORN, stop_timeout=0.5)
    worker.ensure_running()
    _wait_for_line(worker, "ready")
    assert worker.stop() == -signal.SIGKILL
    assert [e.cause for e in worker.unexpected_exits] == ["stop-timeout"]
    assert worker.process is None


def test_stop_all_kills_everything_even_when_a_stop_raises(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    workers = [Supervisor(f"w{n}", {}, tmp_path, command=SLEEPER) for n in range(3)]
    for worker in workers:
        worker.ensure_running()
    processes = [w.process for w in workers]

    def interrupted(_deadline: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(workers[0], "finish_stop", interrupted)
    with pytest.raises(KeyboardInterrupt):
        stop_all(workers)
    assert all(p is not None and p.poll() is not None for p in processes)
    assert all(w.process is None for w in workers)


def test_a_clean_stop_is_expected(tmp_path: Path) -> None:
    worker = Supervisor("sleeper", {}, tmp_path, command=SLEEPER)
    worker.ensure_running()
    assert worker.stop() == -signal.SIGTERM
    assert [e.cause for e in worker.exits] == ["stopped"]
    assert worker.unexpected_exits == []


def test_the_log_tail_is_the_current_process_only(tmp_path: Path) -> None:
    worker = Supervisor("crasher", {}, tmp_path, command=CRASHER)
    worker.log_path.write_text("an earlier run's line\n")
    worker.ensure_running()
    _wait_exited(worker)
    worker.check()
    assert worker.exits[0].log_tail.strip() == "boom: the broker went away"


@pytest.mark.parametrize("restarts", [1, 2, 10])
def test_restarts_are_spread_over_the_horizon_and_mixed(restarts: int) -> None:
    plan = ChaosPlan(seed=3, broker_restarts=restarts, hard_restarts=0.5, fault_horizon=200)
    events = schedule(plan, random.Random(plan.seed))
    times = [t for t, e in events if e.startswith("restart-broker:")]
    kinds = [e.split(":")[1] for _, e in events if e.startswith("restart-broker:")]
    width = (plan.fault_horizon - RESTART_EARLIEST) / restarts
    assert [int((t - RESTART_EARLIEST) // width) for t in times] == list(range(restarts))
    assert kinds.count("hard") == plan.hard_restart_count == int(restarts / 2 + 0.5)
    assert kinds.count("graceful") == restarts - kinds.count("hard")


def test_one_graceful_restart_keeps_the_former_timeline() -> None:
    """Seeds that reproduced a bug still do: one graceful restart draws what it used to."""
    plan = ChaosPlan(seed=12, webinars=3, people_per_webinar=150, kills=3, fault_horizon=15)
    rng = random.Random(plan.seed)
    kills = [(rng.uniform(1, 15), f"kill:{rng.choice(['normalizer', 'sink'])}")
             for _ in range(3)]
    former = sorted([*kills, (rng.uniform(2, 15), "restart-broker:graceful"),
                     (rng.uniform(0, 15), "outage"), (rng.uniform(0, 15), "storm"),
                     (0.0, "errors-on"), (15, "errors-off")])
    assert schedule(plan, random.Random(plan.seed)) == former


def test_a_plan_rejects_a_restart_it_cannot_place() -> None:
    with pytest.raises(ValueError):
        ChaosPlan(broker_restarts=1, fault_horizon=1)
    with pytest.raises(ValueError):
        ChaosPlan(hard_restarts=1.5)


def test_a_broker_restart_interrupted_mid_stop_still_kills_the_jvm(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test timeout during EmbeddedKafka.restart() must not orphan the broker's JVM."""
    kafka = embedded.EmbeddedKafka()
    jvm = subprocess.Popen(SLEEPER)  # stands in for the broker JVM
    kafka._proc, kafka._workdir = jvm, tmp_path / "broker"
    stop_process = embedded.stop_process
    calls: list[bool] = []

    def interrupted(proc: subprocess.Popen[bytes], *, graceful: bool, timeout: float) -> None:
        calls.append(graceful)
        if len(calls) == 1:
            raise KeyboardInterrupt
        stop_process(proc, graceful=False, timeout=timeout)

    monkeypatch.setattr(embedded, "stop_process", interrupted)
    with pytest.raises(KeyboardInterrupt):
        kafka.restart(graceful=True)
    kafka.stop()
    assert jvm.poll() == -signal.SIGKILL and calls == [True, True]
