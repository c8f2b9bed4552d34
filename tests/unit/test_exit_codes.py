"""The launcher's exit codes as a shell and systemd see them, written here as numbers rather than the constants
that name them, so that a wrong constant fails too: 2, vLLM rejected its command line; 3, a pre-flight check of
this machine failed; 4, a person must act; 141, stdout's reader went away (a shell's 128 + SIGPIPE). The unit's
RestartPreventExitStatus=2 3 4 relies on them."""

import os
import socket
import subprocess
import sys

import pytest

from launcher.errors import LauncherError
from launcher.preflight import check_port_free
from launcher.supervision.probe_runner import ProbeRunner
from launcher.supervision.restart_policy import Exit, RestartPolicy
from launcher.supervision.supervised_child import SupervisedChild
from launcher.supervision.supervisor import Supervisor
from tests.support.scripted_child import ScriptedChild

PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class LostGpu(ScriptedChild):
    """A child whose every exit is judged one that restarting cannot help, as a lost GPU is."""

    def escalation(self, exit: Exit) -> str | None:
        return "the GPU fell off the bus"


def supervise(tmp_path, guard, spec) -> int:
    """The launcher's exit code when `spec` is its critical child: Supervisor.run()'s answer."""
    supervisor = Supervisor(tmp_path / "status.json", 1.0, guard=guard)
    supervisor.add(SupervisedChild(spec, RestartPolicy(5, 60.0, 0.05, 0.2), guard, ProbeRunner(), 1.0))
    return supervisor.run()


def test_a_child_that_rejects_its_command_line_ends_the_launcher_with_2(tmp_path, guard):
    assert supervise(tmp_path, guard, ScriptedChild(tmp_path, "exit-2")) == 2


def test_a_child_that_needs_a_person_ends_the_launcher_with_4(tmp_path, guard, monkeypatch):
    monkeypatch.setattr("launcher.supervision.supervised_child.ESCALATION_LINGER_S", 0.2)  # the alert's moment
    assert supervise(tmp_path, guard, LostGpu(tmp_path, "exit-1")) == 4


def test_a_port_another_process_holds_is_this_machines_problem_3():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        with pytest.raises(LauncherError) as refused:
            check_port_free("127.0.0.1", holder.getsockname()[1], "vLLM")
    assert refused.value.exit_code == 3
    assert "already in use" in str(refused.value)


def test_output_into_a_closed_pipe_exits_141():
    process = subprocess.Popen(
        [sys.executable, "-m", "launcher", "--version"], cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()
    assert process.wait(timeout=60) == 141
    assert process.stderr.read() == b""
    process.stderr.close()
