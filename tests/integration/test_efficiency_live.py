"""What a token costs, live (issue 29): the real vLLM's token counters and the stand-in exporter's energy counter,
through the real Prometheus the launcher runs and its efficiency rules, give the expected joules per token.

HARDWARE STAND-IN: there is no GPU here. The exporter over the NVML stand-in runs as one more exporter target,
with two "GPUs" at a fixed power; it shows the real vLLM's process tree (read from the launcher's
supervisor.json) on the first GPU only, so swm_gpu_used_by_vllm is 1 there and 0 on the other, which must not
be counted. Expected J per generated token = (the stand-in's power x the window's seconds) / (the generated
tokens of the same window), both read at the record's own evaluation time.
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from observability.exporter.labels import default_hostname
from tests.support.standin_gpu_target import standin_gpu_target

pytestmark = pytest.mark.vllm

LAUNCHER = Path(sys.executable).parent / "serve-with-monitoring"
POWER_W = 200.0
WINDOW_S = 300  # the records' 5-minute window


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


def test_joules_per_token_from_real_tokens_and_the_standins_energy_within_5_percent(
    shared_server, prometheus, energy_standin
):
    started = time.time()
    # Tokens all through a full 5-minute window of energy: a steady trickle of requests for a bit longer.
    bench = subprocess.run(
        [
            str(LAUNCHER),
            "bench",
            "--state-dir",
            str(shared_server.state_dir),
            "--num-prompts",
            "330",
            "--request-rate",
            "1",
            "--input-len",
            "32",
            "--output-len",
            "16",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert bench.returncode == 0, bench.stdout[-3000:] + bench.stderr[-3000:]
    # The energy series began with the stand-in: wait until the record's window lies wholly after it.
    while time.time() - started < WINDOW_S + 40:
        time.sleep(5)
    record = "swm:vllm_joules_per_generation_token:rate5m"
    found = prometheus.wait_for(f"timestamp({record})", timeout=120)
    at = float(found[0]["value"][1])  # the record's own evaluation time: the same window for what follows

    (value,) = prometheus.query(record, at=at)
    assert value["metric"]["hostname"] == default_hostname() and value["metric"]["model_name"]
    measured = float(value["value"][1])
    tokens_per_s = prometheus.query('sum(rate(vllm:generation_tokens_total{job="vllm"}[5m]))', at=at)
    tokens = float(tokens_per_s[0]["value"][1]) * WINDOW_S
    assert tokens > 0
    expected = POWER_W * WINDOW_S / tokens  # GPU 1, not vLLM's, draws as much and must not count
    assert measured == pytest.approx(expected, rel=0.05), (measured, expected, tokens)

    (power,) = prometheus.query("swm:vllm_gpu_power_watts:rate5m", at=at)
    assert float(power["value"][1]) == pytest.approx(POWER_W, rel=0.05)
    all_tokens = prometheus.query("swm:vllm_joules_per_token:rate5m", at=at)
    kwh = prometheus.query("swm:vllm_tokens_per_kwh:rate5m", at=at)
    assert 0 < float(all_tokens[0]["value"][1]) < measured
    assert float(kwh[0]["value"][1]) == pytest.approx(3.6e6 / float(all_tokens[0]["value"][1]), rel=1e-6)
    # No --gpu-hourly-cost on this server: no cost record
    assert prometheus.query("swm:vllm_cost_per_million_tokens:rate5m") == []
