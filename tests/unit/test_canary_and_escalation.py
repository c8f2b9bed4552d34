"""The canary for an idle engine, against a stub HTTP server that records what it is sent, and the escalation
decision (stall after stall, a GPU that needs a reset) of vLLM's supervised child. The real vLLM's side is in
tests/integration/test_incidents.py."""

import http.server
import json
import threading
import time

import pytest

from launcher.supervision.child_spec import Timing
from launcher.supervision.restart_policy import Exit
from launcher.vllm_server.canary import Canary
from launcher.vllm_server.child import VllmChild
from launcher.vllm_server.command import VllmInvocation
from launcher.vllm_server.metrics_page import parse_metrics_page
from launcher.vllm_server.progress import ProgressWatch
from launcher.vllm_server.target import VllmTarget


class CompletionsStub:
    """Stands in for vLLM's /v1/completions: records each request; answers 200, an error, or nothing."""

    def __init__(self, status: int = 200, hang: bool = False) -> None:
        self.requests: list[tuple[dict, str | None]] = []
        self.release = threading.Event()
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append((body, self.headers.get("Authorization")))
                if hang:
                    stub.release.wait(10)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


def page(running: int = 0, finished: int = 0) -> str:
    return (
        f'vllm:num_requests_running{{engine="0",model_name="m"}} {running}\n'
        f'vllm:num_requests_waiting{{engine="0",model_name="m"}} 0\n'
        f'vllm:request_success_total{{engine="0",finished_reason="stop",model_name="m"}} {finished}\n'
    )


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met")


@pytest.fixture
def stub():
    server = CompletionsStub()
    yield server
    server.close()


def test_one_tiny_completion_after_the_interval_of_idleness_with_the_key(stub):
    canary = Canary(stub.url, "tiny-llama", "Bearer k3y", interval_s=60, timeout_s=5)
    canary.observe(parse_metrics_page(page()), now=0.0)
    canary.observe(parse_metrics_page(page()), now=59.0)
    assert stub.requests == []
    canary.observe(parse_metrics_page(page()), now=60.0)
    wait_until(lambda: canary.report().ok == 1)
    assert stub.requests == [({"model": "tiny-llama", "prompt": "ping", "max_tokens": 1}, "Bearer k3y")]
    assert canary.report().last_latency_s is not None and not canary.in_flight()


def test_never_while_real_traffic_flows(stub):
    canary = Canary(stub.url, "m", None, interval_s=10, timeout_s=5)
    for second in range(0, 100, 5):  # one long request pending, nothing finishing
        canary.observe(parse_metrics_page(page(running=1, finished=0)), now=second)
    for second in range(100, 200, 5):  # nothing pending, but requests finishing between readings
        canary.observe(parse_metrics_page(page(running=0, finished=second)), now=second)
    time.sleep(0.2)
    assert stub.requests == []


def test_a_failed_canary_is_counted_and_off_means_off():
    failing = CompletionsStub(status=500)
    try:
        canary = Canary(failing.url, "m", None, interval_s=1, timeout_s=5)
        canary.observe(parse_metrics_page(page()), now=0.0)
        canary.observe(parse_metrics_page(page()), now=1.0)
        wait_until(lambda: canary.report().failed == 1)
        assert canary.report().last_outcome == "HTTP 500"
        off = Canary(failing.url, "m", None, interval_s=0, timeout_s=5)
        off.observe(parse_metrics_page(page()), now=0.0)
        off.observe(parse_metrics_page(page()), now=1e6)
        time.sleep(0.1)
        assert len(failing.requests) == 1
    finally:
        failing.close()


def test_a_canary_stuck_in_a_frozen_engine_is_a_stall():
    """The engine's own gauges stay at 0 when it froze idle: the canary in flight is the pending work."""
    hanging = CompletionsStub(hang=True)
    try:
        canary = Canary(hanging.url, "m", None, interval_s=1, timeout_s=30)
        watch = ProgressWatch(stall_timeout_s=8)
        idle = parse_metrics_page(page())
        for now in (0.0, 1.0):
            canary.observe(idle, now)
            assert not watch.observe(idle, now, now, canary.in_flight()).stalled
        wait_until(lambda: hanging.requests)
        assert not watch.observe(idle, 5.0, 5.0, canary.in_flight()).stalled
        verdict = watch.observe(idle, 9.5, 9.5, canary.in_flight())
        assert verdict.stalled and "the launcher's canary request pending" in verdict.detail
    finally:
        hanging.close()


def _vllm_child(tmp_path, **kwargs) -> VllmChild:
    target = VllmTarget("m", "127.0.0.1", True, 9, False, None, "m", 1, None)
    invocation = VllmInvocation((), {}, target, tmp_path, tmp_path / "tmp", None, False)
    timing = Timing(startup_timeout_s=60, health_interval_s=5, health_failures=3)
    return VllmChild(invocation, timing, tmp_path / "vllm.log", guard=None, stall_timeout_s=8, **kwargs)


STALL = Exit(code=None, reason="stalled", ever_healthy=True, cause="stalled")


def test_stall_after_stall_without_a_finished_request_escalates_after_max_stall_restarts(tmp_path):
    child = _vllm_child(tmp_path, max_stall_restarts=2)
    assert child.escalation(STALL) is None  # the first stall: restart
    assert child.escalation(STALL) is None  # stalled again, nothing finished in between: 1 in a row
    message = child.escalation(STALL)  # 2 in a row
    assert message and "stalled again after 2 stall restart(s) in a row" in message


def test_a_run_that_finished_a_request_or_a_crash_in_between_starts_the_count_again(tmp_path):
    child = _vllm_child(tmp_path, max_stall_restarts=1)
    assert child.escalation(STALL) is None
    child._last_run_finished_requests = True  # the run after the restart served a request, then stalled
    assert child.escalation(STALL) is None
    child._last_run_finished_requests = False
    assert child.escalation(Exit(code=1, reason="exited", ever_healthy=True)) is None
    assert child.escalation(STALL) is None
    assert child.escalation(STALL) is not None  # stall, then stall with nothing finished: 1 >= 1


def test_a_gpu_that_needs_a_reset_is_never_restarted_into(tmp_path):
    class Health:
        def needs_a_person(self):
            return "GPU 0 reported XID 79 (fell off the bus) 1 time(s)"

    child = _vllm_child(tmp_path, gpu_health=Health())
    assert child.escalation(Exit(code=1, reason="exited", ever_healthy=True)) == (
        "GPU 0 reported XID 79 (fell off the bus) 1 time(s)"
    )
