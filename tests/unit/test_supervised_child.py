"""The supervision state machine, driven with small real child processes (not vLLM: these need seconds)."""

import os
import signal
import time

import psutil
import pytest

from launcher.states import State
from launcher.supervision.child_spec import Probe, Timing
from launcher.supervision.probe_runner import ProbeRunner
from launcher.supervision.restart_policy import RestartPolicy
from launcher.supervision.supervised_child import ESCALATION_LINGER_S, SupervisedChild
from tests.support.scripted_child import FAST, ScriptedChild


def make(tmp_path, guard, mode, timing=FAST, max_restarts=5, grace=2.0):
    policy = RestartPolicy(max_restarts, 60.0, 0.05, 0.2)
    return SupervisedChild(ScriptedChild(tmp_path, mode, timing), policy, guard, ProbeRunner(), grace)


def drive(child, until, timeout=15.0):
    deadline = time.monotonic() + timeout
    child.start(time.monotonic()) if child.state == State.STOPPED else None
    while time.monotonic() < deadline:
        child.tick(time.monotonic())
        if until(child):
            return
        time.sleep(0.02)
    child.stop(0.5)
    raise AssertionError(f"timed out in state {child.state}")


def test_a_crash_after_healthy_is_restarted(tmp_path, guard):
    child = make(tmp_path, guard, "healthy")
    drive(child, lambda c: c.state == State.HEALTHY)
    first_pid = child.process.pid
    os.kill(first_pid, signal.SIGKILL)
    drive(child, lambda c: c.state == State.HEALTHY and c.process and c.process.pid != first_pid)
    assert child.restarts_total == 1
    assert child.last_exit_code == -signal.SIGKILL
    child.stop()


def test_failed_health_checks_trigger_a_restart(tmp_path, guard):
    child = make(tmp_path, guard, "healthy")
    drive(child, lambda c: c.state == State.HEALTHY)
    first_pid = child.process.pid
    (tmp_path / str(first_pid)).unlink()
    drive(child, lambda c: c.restarts_total == 1)
    with pytest.raises(ProcessLookupError):
        os.kill(first_pid, 0)
    drive(child, lambda c: c.state == State.HEALTHY)
    child.stop()


def test_same_exit_twice_before_healthy_is_reported_as_a_configuration_error(tmp_path, guard):
    child = make(tmp_path, guard, "exit-1")
    drive(child, lambda c: c.state == State.FAILED)
    assert child.restarts_total == 1
    assert "twice without becoming healthy" in child.outcome.message
    assert child.outcome.exit_code == 1


def test_rejected_arguments_are_not_retried(tmp_path, guard):
    child = make(tmp_path, guard, "exit-2")
    drive(child, lambda c: c.state == State.FAILED)
    assert child.restarts_total == 0
    assert child.outcome.exit_code == 2


def test_gives_up_after_max_restarts_within_the_window(tmp_path, guard):
    child = make(tmp_path, guard, "healthy", max_restarts=2)
    for _ in range(3):
        drive(child, lambda c: c.state == State.HEALTHY)
        os.kill(child.process.pid, signal.SIGKILL)
        drive(child, lambda c: c.state in (State.BACKOFF, State.FAILED))
    assert child.state == State.FAILED
    assert "giving up" in child.outcome.message
    assert child.restarts_total == 2


def test_startup_timeout_kills_and_retries(tmp_path, guard):
    timing = Timing(startup_timeout_s=0.5, health_interval_s=0.1, health_failures=2, startup_probe_interval_s=0.05)
    child = make(tmp_path, guard, "never-healthy", timing=timing)
    drive(child, lambda c: c.restarts_total == 1)
    assert child.state == State.BACKOFF
    child.stop()


def test_stop_kills_a_child_that_ignores_sigterm_after_the_grace_period(tmp_path, guard):
    child = make(tmp_path, guard, "ignore-term", grace=1.0)
    drive(child, lambda c: c.state == State.HEALTHY)
    pid = child.process.pid
    started = time.monotonic()
    child.stop()
    elapsed = time.monotonic() - started
    assert elapsed >= 0.9  # it waited out the grace period; a kill that never comes hangs the test
    assert child.last_exit_code == -signal.SIGKILL
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_helper_runs_at_a_lower_priority_than_the_launcher(tmp_path, guard):
    spec = ScriptedChild(tmp_path, "healthy")
    spec.niceness = 10
    child = SupervisedChild(spec, RestartPolicy(1, 60.0, 0.05, 0.2), guard, ProbeRunner(), 2.0)
    drive(child, lambda c: c.state == State.HEALTHY)
    assert os.getpriority(os.PRIO_PROCESS, child.process.pid) == os.getpriority(os.PRIO_PROCESS, 0) + 10
    child.stop()


class _StallsOnce(ScriptedChild):
    """Healthy, then once judged stalled by its probe, the way VllmChild judges a hung engine."""

    verdicts_left = 3

    def probe(self, pid):
        if self.verdicts_left == 0:
            return super().probe(pid)
        self.verdicts_left -= 1
        if self.verdicts_left == 0:
            return Probe(False, "stalled: no progress for 9 s with 8 running", True, "stalled", stalled=True)
        return super().probe(pid)


def test_a_stall_is_its_own_state_then_a_restart_counted_by_cause(tmp_path, guard):
    spec = _StallsOnce(tmp_path, "healthy")
    child = SupervisedChild(spec, RestartPolicy(5, 60.0, 0.05, 0.2), guard, ProbeRunner(), 2.0)
    seen = []
    drive(child, lambda c: seen.append(c.state) or (c.restarts_total == 1 and c.state == State.HEALTHY))
    assert State.STALLED in seen
    assert seen.index(State.STALLED) < seen.index(State.BACKOFF)
    assert child.failures == {"stalled": 1}
    assert child.reason == ""  # healthy again
    child.stop()


def test_stopping_continues_a_frozen_child_so_it_can_act_on_sigterm(tmp_path, guard, caplog):
    child = make(tmp_path, guard, "healthy", grace=60.0)
    drive(child, lambda c: c.state == State.HEALTHY)
    pid = child.process.pid
    os.kill(pid, signal.SIGSTOP)
    while psutil.Process(pid).status() != psutil.STATUS_STOPPED:
        time.sleep(0.01)  # the stop takes effect a moment after the signal
    started = time.monotonic()
    child.stop()
    assert time.monotonic() - started < 30  # not the whole 60 s grace period: a frozen child would sit it out
    assert (tmp_path / f"term-{pid}").exists()  # it saw the SIGTERM and ran its own shutdown
    assert child.last_exit_code == 0
    assert any("continued it so that it can act on SIGTERM" in r.getMessage() for r in caplog.records)


class _GpuLost(ScriptedChild):
    """A child whose spec says, before the restart, that the GPU needs a person (a lost GPU, say), and which
    keeps a bundle of each incident."""

    def escalation(self, exit):
        return "GPU 0 reported XID 79 (fell off the bus) 1 time(s)"

    def record_incident(self, pid, incident):
        bundle = self.directory / f"bundle-{incident.reason}"
        bundle.mkdir(exist_ok=True)
        return bundle


def test_a_crash_that_restarting_cannot_help_escalates_to_gpu_failed_exit_4_with_bundles(tmp_path, guard):
    child = SupervisedChild(
        _GpuLost(tmp_path, "crash-after"), RestartPolicy(5, 60, 0.05, 0.1), guard, ProbeRunner(), 2.0
    )
    drive(child, lambda c: c.state == State.GPU_FAILED)
    # docs/faults.md: the monitoring stays up 90 s, for the alert to go out, before the launcher exits 4.
    assert child.outcome.exit_code == 4 and child.outcome.linger_s == ESCALATION_LINGER_S == 90
    assert "A person must act" in child.outcome.message and "XID 79" in child.outcome.message
    assert child.restarts_total == 0  # never restarted into the broken GPU
    assert dict(child.incidents) == {"exited": 1, "gpu_failed": 1}
    assert child.last_incident.reason == "gpu_failed" and child.last_incident.bundle.endswith("bundle-gpu_failed")
    assert [t.new for t in child.transitions][-2:] == ["stopping", "gpu-failed"]
    child.stop()  # a requested stop leaves it in its final state
    assert child.state == State.GPU_FAILED
