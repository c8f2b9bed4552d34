"""The real exporter, started by the launcher beside the real vLLM, against psutil's view of the same processes.

There is no GPU here: NVML is absent for real, so GPU metrics are off and swm_nvml_up is 0.
"""

import time

import psutil
import pytest

from tests.support.launcher_process import http_get
from tests.support.metrics_text import one, parse_metrics

pytestmark = pytest.mark.vllm


def scrape(server) -> dict:
    status, text = http_get(server.exporter_url + "/metrics")
    assert status == 200
    return parse_metrics(text)


def fresh_scrape(server) -> dict:
    """A scrape taken after a collection that started after this call (collections run every 5 s)."""
    before = time.time()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = scrape(server)
        if one(found, "swm_exporter_collector_last_success_timestamp_seconds", collector="supervisor") > before:
            return found
        time.sleep(0.5)
    raise AssertionError("no fresh collection")


def vllm_tree(server) -> list[psutil.Process]:
    root = psutil.Process(server.vllm_pid())
    return [root, *root.children(recursive=True)]


def test_the_exporter_is_supervised_healthy_and_on_loopback(server):
    assert server.child_state("exporter")["state"] == "healthy"
    assert http_get(server.exporter_url + "/healthz") == (200, "ok\n")
    exporter = psutil.Process(server.child_state("exporter")["pid"])
    listening = [c.laddr for c in exporter.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
    assert [(address.ip, address.port) for address in listening] == [("127.0.0.1", server.exporter_port)]


def test_supervisor_metrics_match_psutils_view_of_the_vllm_tree(server):
    found = fresh_scrape(server)
    tree = vllm_tree(server)
    assert one(found, "swm_supervisor_up") == 1
    assert one(found, "swm_child_up", child="vllm") == 1
    assert one(found, "swm_child_ready", child="vllm") == 1
    assert one(found, "swm_child_state", child="vllm", state="healthy") == 1
    assert one(found, "swm_child_processes", child="vllm") == len(tree)
    state = server.child_state("vllm")
    assert one(found, "swm_child_restarts_total", child="vllm") == state["restarts_total"]
    assert one(found, "swm_child_start_time_seconds", child="vllm") == pytest.approx(state["started_at"])

    rss_now = sum(process.memory_info().rss for process in tree)
    assert one(found, "swm_child_resident_memory_bytes", child="vllm") == pytest.approx(rss_now, rel=0.1)
    cpu_now = sum(process.cpu_times().user + process.cpu_times().system for process in tree)
    exported_cpu = one(found, "swm_child_cpu_seconds_total", child="vllm")
    assert 0 < exported_cpu <= cpu_now + 0.01
    assert exported_cpu > cpu_now - 10  # collected within the last few seconds


def test_host_metrics_match_psutil(server):
    found = fresh_scrape(server)
    assert one(found, "swm_host_memory_total_bytes") == psutil.virtual_memory().total
    assert one(found, "swm_host_cpus") == psutil.cpu_count()
    free = one(found, "swm_host_filesystem_free_bytes", path=str(server.state_dir))
    assert free == pytest.approx(psutil.disk_usage(str(server.state_dir)).free, rel=0.05)


def test_without_a_gpu_nvml_is_down_and_nothing_else_is(server):
    found = scrape(server)
    assert one(found, "swm_nvml_up") == 0
    assert "DCGM_FI_DEV_FB_USED" not in found
    for collector in ("host", "supervisor", "gpu", "gpu_processes", "xid", "nvml"):
        assert one(found, "swm_exporter_collector_up", collector=collector) == 1
    assert not any(":" in name for name in found)
