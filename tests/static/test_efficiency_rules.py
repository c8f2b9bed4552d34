"""What a token costs (issue 29): the efficiency rules are generated, loaded everywhere (native and compose read
the launcher's rules dir, Kubernetes the shipped files), carry cost rules only with --gpu-hourly-cost, and give
the known cost for a known GPU count and token rate (promtool, over the series of efficiency_test.yml)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from launcher.errors import UsageError
from launcher.settings.command_line import parse_command_line
from launcher.settings.config_file import load_config_file
from launcher.settings.settings import load_settings, merge_settings
from launcher.stack.prometheus_rules import write_rules
from launcher.stack.prometheus_targets import write_local_targets
from launcher.state_layout import StateLayout
from observability.efficiency_rules import render
from observability.exporter.labels import default_hostname
from observability.kubernetes_manifests import prometheus_rule

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "observability" / "prometheus" / "rules"
TESTS = REPO / "observability" / "prometheus" / "tests"
PROMTOOL = Path(sys.executable).parent / "promtool"
COST_RECORDS = {
    "swm:gpu_hourly_cost",
    "swm:vllm_cost_per_million_generation_tokens:rate5m",
    "swm:vllm_cost_per_million_tokens:rate5m",
    "swm:vllm_cost_per_million_generation_tokens:rate1h",
    "swm:vllm_cost_per_million_tokens:rate1h",
    "swm:vllm_idle_gpu_cost:1d",
}


def records(document: dict) -> set[str]:
    return {rule["record"] for group in document["groups"] for rule in group["rules"] if "record" in rule}


def test_the_shipped_efficiency_rules_are_generated_from_the_code_and_hold_no_cost():
    result = subprocess.run(
        [sys.executable, "-m", "observability.efficiency_rules", "--check"], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    shipped = records(yaml.safe_load((RULES / "efficiency.yml").read_text()))
    assert "swm:vllm_joules_per_token:rate5m" in shipped and "swm:vllm_tokens_per_kwh:rate1h" in shipped
    every_shipped = set().union(*(records(yaml.safe_load(path.read_text())) for path in RULES.glob("*.yml")))
    assert every_shipped & COST_RECORDS == set()
    assert all(name.startswith("swm:") for name in shipped)


def test_cost_rules_only_with_a_valid_hourly_cost():
    assert records(yaml.safe_load(render(2.5))) >= COST_RECORDS
    assert "vector(2.5)" in render(2.5)
    for bad in (0, -1.0, float("nan"), float("inf"), 1e7, True, "2.5"):
        with pytest.raises(ValueError):
            render(bad)


def test_a_known_gpu_count_and_token_rate_give_the_known_cost(tmp_path):
    """Host h1: 2 vLLM GPUs at 3.6 an hour are 0.002 a second; at 100 generated (300 in all) tokens a second,
    20 per million generated tokens and 6.67 per million tokens. h2 made no token (no cost per token) and idled
    on its one GPU all along: 24 GPU-hours a day, 86.4."""
    (tmp_path / "efficiency.yml").write_text(render(3.6))
    test = yaml.safe_load((TESTS / "efficiency_test.yml").read_text())["tests"][0]

    def expect(record, eval_time, *samples):
        return {
            "expr": record,
            "eval_time": eval_time,
            "exp_samples": [{"labels": f"{record}{{{labels}}}", "value": value} for labels, value in samples],
        }

    server = 'hostname="h1", instance="h1:8000", model_name="m"'
    test["promql_expr_test"] = [
        expect("swm:vllm_cost_per_million_generation_tokens:rate5m", "10m", (server, 20)),
        expect("swm:vllm_cost_per_million_tokens:rate5m", "10m", (server, 20 / 3)),
        expect("swm:vllm_cost_per_million_generation_tokens:rate1h", "90m", (server, 20)),
        expect("swm:vllm_cost_per_million_tokens:rate1h", "90m", (server, 20 / 3)),
        expect("swm:vllm_idle_gpu_cost:1d", "90m", ('hostname="h1"', 0), ('hostname="h2"', 86.4)),
        expect("swm:gpu_hourly_cost", "10m", ("", 3.6)),
    ]
    document = {"rule_files": ["efficiency.yml"], "evaluation_interval": "30s", "tests": [test]}
    (tmp_path / "cost_test.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    result = subprocess.run(
        [str(PROMTOOL), "test", "rules", str(tmp_path / "cost_test.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_launcher_writes_the_efficiency_rules_with_the_users_cost(tmp_path):
    def written(*argv):
        settings = merge_settings(parse_command_line(["--state-dir", str(tmp_path / "state"), *argv]))
        layout = StateLayout(settings.state_dir)
        layout.ensure()
        return yaml.safe_load((write_rules(settings, layout) / "efficiency.yml").read_text())

    assert records(written()) & COST_RECORDS == set()
    with_cost = written("--gpu-hourly-cost", "1.25")
    assert records(with_cost) >= COST_RECORDS
    assert "vector(1.25)" in [r["expr"] for g in with_cost["groups"] for r in g["rules"] if "record" in r][-6]


def test_kubernetes_loads_the_efficiency_rules_without_cost():
    names = {rule.get("record") for group in prometheus_rule()["spec"]["groups"] for rule in group["rules"]}
    assert "swm:vllm_joules_per_generation_token:rate5m" in names
    assert names & COST_RECORDS == set()
    monitor = yaml.safe_load((REPO / "deploy" / "kubernetes" / "servicemonitor.yaml").read_text())
    vllm = next(e for e in monitor["spec"]["endpoints"] if e["port"] == "http")
    assert {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "hostname"} in vllm["relabelings"]


def test_vllms_target_carries_the_exporters_hostname_label(tmp_path):
    write_local_targets(tmp_path, vllm="127.0.0.1:8000", exporter="127.0.0.1:9400", prometheus=None)
    vllm = json.loads((tmp_path / "vllm.json").read_text())
    exporter = json.loads((tmp_path / "exporter.json").read_text())
    assert vllm[0]["labels"] == {"hostname": default_hostname()}
    assert exporter[0]["labels"] == {}  # its GPU series carry their own hostname


def test_gpu_hourly_cost_from_the_command_line_and_the_config_file(tmp_path):
    assert merge_settings(parse_command_line(["--gpu-hourly-cost", "2.5"])).gpu_hourly_cost == 2.5
    assert merge_settings(parse_command_line([])).gpu_hourly_cost is None
    config = tmp_path / "config.yaml"
    config.write_text("gpu-hourly-cost: 3\n")
    assert load_settings(parse_command_line(["--config", str(config)])).gpu_hourly_cost == 3.0
    config.write_text("gpu-hourly-cost: -3\n")
    with pytest.raises(UsageError, match=r"gpu-hourly-cost.*expected an amount per GPU-hour"):
        load_config_file(config)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e9", "two"])
def test_a_bad_gpu_hourly_cost_is_one_line_and_exit_2(value):
    result = subprocess.run(
        [sys.executable, "-m", "launcher", "--gpu-hourly-cost", value, "some-model"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--gpu-hourly-cost" in lines[0] and "Traceback" not in result.stderr
