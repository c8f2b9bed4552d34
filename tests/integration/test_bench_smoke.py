"""Benchmarks are not tests: these only check that each bench script completes on a tiny budget.
No number is asserted; docs/benchmarks.md holds the real runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_bench(module: str, *args: str, cache_home: Path | None = None, timeout: float = 600) -> dict:
    env = {**os.environ, **({"SWM_BENCH_CACHE_HOME": str(cache_home)} if cache_home else {})}
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_slo_rule_cost_bench_completes():
    report = run_bench(
        "slo_rule_cost",
        "--days",
        "0.1",
        "--rounds",
        "1",
        "--evaluations",
        "1",
        "--every",
        "3s",
        "--baseline-ref",
        "HEAD",
    )
    assert report["shipped_vs_baseline"] is not None


def test_exporter_overhead_bench_completes():
    report = run_bench("exporter_overhead", "--scrapes", "5", "--collections", "2", "--gpus", "1,2")
    assert [row["gpus"] for row in report["rows"]] == [1, 2]


def test_hostile_clients_bench_completes():
    report = run_bench(
        "hostile_clients",
        *("--rounds", "1", "--seconds", "1", "--build-up", "0.5", "--flooders", "2", "--half-open", "4"),
        *("--baseline-ref", "HEAD"),
    )
    assert set(report["conditions"]) == {"before", "after"}
    assert report["conditions"]["after"]["runs"][0]["scrapes_answered"] > 0


def test_remote_write_catchup_bench_completes():
    report = run_bench(
        "remote_write_catchup",
        *("--rounds", "1", "--outage", "3", "--steady", "1", "--scrape-interval", "1"),
        timeout=300,
    )
    assert report["catch_up_s"]["n"] == 1 and len(report["missing_samples"]) == 1
    assert {"extra", "ratio_vs_baseline"} <= report["catch_up"]["cpu_s"].keys()


@pytest.mark.vllm
@pytest.mark.own_server
def test_serving_overhead_bench_completes(cache_home):
    report = run_bench(
        "serving_overhead",
        "--rounds",
        "1",
        "--conditions",
        "bare,monitored-5s",
        "--num-prompts",
        "10",
        "--warmup",
        "0",
        cache_home=cache_home,
    )
    monitored = report["conditions"]["monitored-5s"]
    assert {"ratio_vs_bare", "ratio_per_round", "helper_cpu_pct_of_one_core"} <= monitored.keys()


@pytest.mark.vllm
@pytest.mark.own_server
def test_startup_bench_completes(cache_home):
    report = run_bench("startup", "--rounds", "1", "--kinds", "launcher", cache_home=cache_home)
    assert report["seconds_to_healthy"]["launcher"]["n"] == 1


@pytest.mark.vllm
@pytest.mark.own_server
def test_restart_bench_completes(cache_home):
    report = run_bench("restart", "--rounds", "1", "--cold-starts", "0", cache_home=cache_home)
    assert report["restart_after_engine_kill_s"]["n"] == 1
    assert report["engine_death_detected_s"]["n"] == 1


@pytest.mark.vllm
@pytest.mark.own_server
def test_stop_bench_completes(cache_home):
    report = run_bench("stop", "--rounds", "1", "--cases", "launcher-streaming", "--grace", "5", cache_home=cache_home)
    assert report["stop_s"]["launcher-streaming"]["n"] == 1


@pytest.mark.vllm
def test_vllm_metrics_cost_bench_completes_against_the_shared_server(server):
    model = server.supervisor_state()["info"]["model"]
    report = run_bench(
        "vllm_metrics_cost",
        "--base-url",
        server.base_url,
        "--tokenizer",
        model,
        "--scrapes",
        "5",
        "--num-prompts",
        "10",
    )
    assert report["idle"]["scrapes"] == 5


@pytest.mark.vllm
@pytest.mark.own_server
def test_idle_cpu_bench_completes(cache_home):
    report = run_bench("idle_cpu", "--window", "2", "--settle", "1", cache_home=cache_home)
    assert {"launcher", "exporter", "prometheus", "vllm"} <= set(report["cpu_percent_of_one_core"])


@pytest.mark.vllm
@pytest.mark.own_server
def test_stall_recovery_bench_completes(cache_home):
    report = run_bench(
        "stall_recovery",
        "--rounds",
        "0",
        "--helper-rounds",
        "1",
        "--cost-rounds",
        "0",
        "--stall-timeout",
        "3",
        cache_home=cache_home,
    )
    assert report["freeze"]["helper_freeze_to_healthy_again_s"]["exporter"]["n"] == 1


@pytest.mark.vllm
@pytest.mark.own_server
def test_stop_at_random_bench_completes(cache_home):
    report = run_bench("stop_at_random", "--cases", "1", "--grace", "5", cache_home=cache_home)
    assert report["stop_s"]["n"] == 1 and "within_target" in report


@pytest.mark.vllm
@pytest.mark.own_server
def test_incident_cost_bench_completes(cache_home):
    report = run_bench(
        "incident_cost",
        "--rounds",
        "1",
        # Not less: a just-started vLLM on this CPU may take several seconds over its first request (the
        # canary's), and a shorter stall timeout calls that a stall and restarts it, again and again.
        "--stall-timeout",
        "10",
        "--cost-rounds",
        "1",
        "--cost-window",
        "3",
        "--canary-interval",
        "1",
        "--settle",
        "1",
        cache_home=cache_home,
    )
    assert report["capture"]["capture_s"]["n"] == 1
    assert {"launcher", "api_server", "engine_core"} <= set(report["canary"]["canary_cost_percent_of_one_core"])
