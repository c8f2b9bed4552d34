"""What a token costs, live (issue 29): the real vLLM's token counters and the stand-in exporter's energy counter,
through the real Prometheus the launcher runs and its efficiency rules, give the expected joules per token.

HARDWARE STAND-IN: there is no GPU here. The exporter over the NVML stand-in runs as one more exporter target,
with two "GPUs" at a fixed power; it shows the real vLLM's process tree (read from the launcher's
supervisor.json) on the first GPU only, so swm_gpu_used_by_vllm is 1 there and 0 on the other, which must not
be counted. Expected J per generated token = (the stand-in's power x the window's seconds) / (the generated
tokens of the same window), both read at the same moment.
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from observability.efficiency_rules import render
from observability.exporter.labels import default_hostname
from tests.support.standin_gpu_target import standin_gpu_target

pytestmark = pytest.mark.vllm

LAUNCHER = Path(sys.executable).parent / "serve-with-monitoring"
POWER_W = 200.0
WINDOW = "30s"  # the records' expressions over a shorter window than their 5 minutes (see _over)
WINDOW_S = 30


@pytest.fixture(scope="module")
def energy_standin(shared_server, prometheus):
    """Two stand-in GPUs at POWER_W each, vLLM's tree on GPU 0 only."""
    # The stand-in labels its GPUs hostname="standin-gpu-host"; this host's name as a target label replaces it
    # (the scraped one becomes exported_hostname), as the launcher labels its vLLM target: the rules' join.
    options = ("--gpus", "2", "--interval", "1", "--power-w", str(POWER_W), "--vllm-on-gpus", "1")
    state_file = str(shared_server.state_dir / "supervisor.json")
    with standin_gpu_target(
        shared_server.state_dir,
        "exporter-standin-energy",
        *options,
        "--state-file",
        state_file,
        labels={"hostname": default_hostname()},
    ) as instance:
        prometheus.wait_for(f'swm_gpu_used_by_vllm{{instance="{instance}", gpu="0"}} == 1', timeout=120)
        yield instance


def _over(record: str, window: str) -> str:
    """The record's own expression, as the launcher rendered it for this server, over `window` instead of 5
    minutes, with the records it reads written out: the rules' joins and selectors, live, without waiting five
    minutes for the records' own window to fill (their figures over synthetic series: efficiency_test.yml)."""
    rules = {
        rule["record"]: rule["expr"]
        for group in yaml.safe_load(render())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    expr = rules[record]
    for name in sorted(rules, key=len, reverse=True):
        if name != record and name.endswith(":rate5m") and name in expr:
            expr = expr.replace(name, f"({rules[name]})")
    return expr.replace("[5m]", f"[{window}]")


def test_joules_per_token_from_real_tokens_and_the_standins_energy_within_5_percent(
    shared_server, prometheus, energy_standin
):
    started = time.time()
    # Tokens all through a full window of energy: a steady trickle of requests for a bit longer than the window.
    bench = subprocess.run(
        [
            str(LAUNCHER),
            "bench",
            "--state-dir",
            str(shared_server.state_dir),
            "--num-prompts",
            str(WINDOW_S + 20),
            "--request-rate",
            "1",
            "--input-len",
            "32",
            "--output-len",
            "16",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert bench.returncode == 0, bench.stdout[-3000:] + bench.stderr[-3000:]
    while time.time() - started < WINDOW_S + 20:  # the window wholly after the stand-in's first sample
        time.sleep(2)
    at = time.time() - 5  # a moment every scrape of it has reached

    (value,) = prometheus.query(_over("swm:vllm_joules_per_generation_token:rate5m", WINDOW), at=at)
    assert value["metric"]["hostname"] == default_hostname() and value["metric"]["model_name"]
    measured = float(value["value"][1])
    tokens_per_s = prometheus.query(f'sum(rate(vllm:generation_tokens_total{{job="vllm"}}[{WINDOW}]))', at=at)
    tokens = float(tokens_per_s[0]["value"][1]) * WINDOW_S
    assert tokens > 0
    expected = POWER_W * WINDOW_S / tokens  # GPU 1, not vLLM's, draws as much and must not count
    assert measured == pytest.approx(expected, rel=0.05), (measured, expected, tokens)

    (power,) = prometheus.query(_over("swm:vllm_gpu_power_watts:rate5m", WINDOW), at=at)
    assert float(power["value"][1]) == pytest.approx(POWER_W, rel=0.05)
    (all_tokens,) = prometheus.query(_over("swm:vllm_joules_per_token:rate5m", WINDOW), at=at)
    (kwh,) = prometheus.query(_over("swm:vllm_tokens_per_kwh:rate5m", WINDOW), at=at)
    assert 0 < float(all_tokens["value"][1]) < measured
    assert float(kwh["value"][1]) == pytest.approx(3.6e6 / float(all_tokens["value"][1]), rel=1e-6)
    # The records themselves, evaluated by the rules Prometheus loaded, the cost ones with the shared server's
    # --gpu-hourly-cost (a server without it has none: efficiency_test.yml)
    prometheus.wait_for("swm:vllm_joules_per_generation_token:rate5m", timeout=60)
    prometheus.wait_for("swm:vllm_cost_per_million_tokens:rate5m", timeout=60)
