"""A stop signal is acted on inside its handler: every child has its SIGTERM before the handler returns,
whatever the supervisor's loop is doing. Here the loop never runs at all, so only the handler can have sent
them (tests/unit/test_stops_at_any_moment.py signals a real supervisor process at random moments)."""

import signal
import time

from launcher.states import State
from launcher.supervision.probe_runner import ProbeRunner
from launcher.supervision.restart_policy import RestartPolicy
from launcher.supervision.supervised_child import SupervisedChild
from launcher.supervision.supervisor import Supervisor
from tests.support.scripted_child import ScriptedChild


def test_the_stop_handler_itself_sends_every_child_its_sigterm(tmp_path, guard):
    supervisor = Supervisor(tmp_path / "supervisor.json", 30.0, guard=guard)
    children = [
        supervisor.add(
            SupervisedChild(
                ScriptedChild(tmp_path, "healthy", name=name), RestartPolicy(1, 60, 1, 1), guard, ProbeRunner(), 30.0
            )
        )
        for name in ("server", "helper")
    ]
    for child in children:
        child.start(time.monotonic())
    deadline = time.monotonic() + 15
    while not all(child.state == State.HEALTHY for child in children):
        assert time.monotonic() < deadline, [child.state for child in children]
        for child in children:
            child.tick(time.monotonic())
        time.sleep(0.02)
    pids = [child.process.pid for child in children]

    supervisor._on_signal(signal.SIGTERM, None)

    deadline = time.monotonic() + 60  # no bound on when each child runs its handler: only on "never"
    for pid in pids:  # each child writes term-PID from its own SIGTERM handler
        while not (tmp_path / f"term-{pid}").exists():
            assert time.monotonic() < deadline, f"child {pid} never got its SIGTERM"
            time.sleep(0.01)
    for child in children:
        child.stop(1.0)
