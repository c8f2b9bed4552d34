"""A helper that keeps failing (Prometheus, Grafana, the exporter) never takes the model server down."""

import threading
import time

from launcher.states import read_status
from launcher.supervision.probe_runner import ProbeRunner
from launcher.supervision.restart_policy import RestartPolicy
from launcher.supervision.supervised_child import SupervisedChild
from launcher.supervision.supervisor import Supervisor
from tests.support.scripted_child import ScriptedChild


def test_a_failed_helper_is_reported_and_the_critical_child_keeps_running(tmp_path, guard):
    supervisor = Supervisor(tmp_path / "supervisor.json", 2.0)
    probes = ProbeRunner(on_done=supervisor.wakeups.wake)
    for spec in (
        ScriptedChild(tmp_path, "healthy", name="vllm", display_name="vLLM", critical=True),
        ScriptedChild(tmp_path, "exit-1", name="prometheus", display_name="Prometheus", critical=False),
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
    assert result["code"] == 0
