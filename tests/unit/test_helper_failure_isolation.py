"""A helper that keeps failing (Prometheus, Grafana, the exporter) never takes the model server down."""

import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from launcher.child_spec import Probe, Timing
from launcher.orphan_guard import OrphanGuard
from launcher.probe_runner import ProbeRunner
from launcher.restart_policy import RestartPolicy
from launcher.supervised_child import SupervisedChild
from launcher.supervisor import Supervisor
from launcher.supervisor_state import read_status

FAST = Timing(10, 0.1, 2, 0.05)


@dataclass
class Spec:
    name: str
    code: str
    critical: bool
    log_path: Path
    display_name: str = ""
    timing: Timing = FAST

    def argv(self):
        return (sys.executable, "-c", self.code)

    def env(self):
        return dict(os.environ)

    def prepare(self):
        pass

    def forget_run(self):
        pass

    def before_kill(self, pgid):
        pass

    def probe(self, pid):
        return Probe(True)

    def fatal_exit_reason(self, exit):
        return None


def test_a_failed_helper_is_reported_and_the_critical_child_keeps_running(tmp_path):
    guard = OrphanGuard()
    guard.start()
    supervisor = Supervisor(tmp_path / "supervisor.json", 2.0)
    probes = ProbeRunner()
    for spec in (
        Spec("vllm", "import time; time.sleep(60)", True, tmp_path / "v.log", "vLLM"),
        Spec("prometheus", "import sys; sys.exit(1)", False, tmp_path / "p.log", "Prometheus"),
    ):
        supervisor.add(SupervisedChild(spec, RestartPolicy(3, 60, 0.05, 0.1), guard, probes, 2.0))
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", supervisor.run()))
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status = read_status(tmp_path / "supervisor.json")
            if status and status.child("prometheus").state == "failed":
                break
            time.sleep(0.1)
        time.sleep(0.5)
        status = read_status(tmp_path / "supervisor.json")
        assert status.child("prometheus").state == "failed"
        assert "configuration error" in status.child("prometheus").message
        assert status.child("vllm").state == "healthy"
        assert thread.is_alive()
    finally:
        supervisor.request_stop()
        thread.join(10)
        guard.close()
    assert result["code"] == 0
