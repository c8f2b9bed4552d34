"""What wakes the supervisor while its children are probed: a healthy answer from a healthy child does
not (it waits for the next probe's timer), anything else does, and probes fall on a shared grid."""

import os
import threading
import time

from launcher.states import State
from launcher.supervision.probe_runner import ProbeRunner
from launcher.supervision.restart_policy import RestartPolicy
from launcher.supervision.supervised_child import SupervisedChild
from launcher.supervision.wakeups import next_on_grid
from tests.support.scripted_child import FAST, ScriptedChild


def test_the_grid_is_shared_by_intervals_that_divide_each_other():
    assert next_on_grid(12.3, 5.0) == 15.0
    assert next_on_grid(15.0, 5.0) == 20.0  # due now: the next one is a whole interval on
    assert next_on_grid(12.3, 10.0) == 20.0 and next_on_grid(17.0, 5.0) == 20.0


class CountingWakes:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self) -> None:
        with self.lock:
            self.count += 1


def _drive_until(child, predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.tick(time.monotonic())
        if predicate(child):
            return
        time.sleep(min(0.02, max(0.0, child.wake_at(time.monotonic()) - time.monotonic())))
    raise AssertionError(f"still {child.state}")


def test_healthy_answers_wait_for_the_timer_and_a_failed_one_wakes_at_once(tmp_path, guard):
    wakes = CountingWakes()
    child = SupervisedChild(
        ScriptedChild(tmp_path, "healthy", FAST), RestartPolicy(3, 60.0, 0.05, 0.2), guard, ProbeRunner(wakes), 2.0
    )
    child.start(time.monotonic())
    try:
        _drive_until(child, lambda c: c.state == State.HEALTHY)
        at_healthy = wakes.count
        probes_before = child._probe_sent_at
        _drive_until(child, lambda c: c._probe_sent_at >= probes_before + 5 * FAST.health_interval_s)
        time.sleep(0.05)
        assert wakes.count == at_healthy  # five healthy probes later, no wakeup asked for
        os.unlink(tmp_path / str(child.process.pid))  # its next answer is a failure
        _drive_until(child, lambda c: c.state == State.UNHEALTHY)
        assert wakes.count > at_healthy
    finally:
        child.stop(0.5)
