"""promtool on the shipped Prometheus config and rules: check config, check rules, test rules."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

from launcher import defaults

REPO = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = REPO / "observability" / "prometheus"
PROMTOOL = Path(sys.executable).parent / "promtool"


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(PROMTOOL), *args], capture_output=True, text=True, check=False)


def test_rules_pass_promtool_check():
    result = promtool("check", "rules", *map(str, sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_and_stays_quiet_in_promtool_unit_tests():
    result = promtool("test", "rules", str(PROMETHEUS_DIR / "tests" / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_has_a_firing_and_a_quiet_case():
    alerts = [
        rule["alert"]
        for group in yaml.safe_load((PROMETHEUS_DIR / "rules" / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    cases = [
        case
        for test in yaml.safe_load((PROMETHEUS_DIR / "tests" / "alerts_test.yml").read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    for alert in alerts:
        mine = [case for case in cases if case["alertname"] == alert]
        assert any(case["exp_alerts"] for case in mine), f"{alert} never fires in a test"
        assert any(not case["exp_alerts"] for case in mine), f"{alert} never has a quiet case"


def test_counters_are_queried_by_their_total_names():
    text = "\n".join(path.read_text() for path in (PROMETHEUS_DIR / "rules").glob("*.yml"))
    for counter in (
        "num_preemptions",
        "request_success",
        "prompt_tokens",
        "generation_tokens",
        "prefix_cache_hits",
        "prefix_cache_queries",
    ):
        assert not re.search(rf"vllm:{counter}(?!_total)\b", text), counter


def test_slo_fallbacks_in_the_rules_equal_the_launcher_defaults():
    text = (PROMETHEUS_DIR / "rules" / "alerts.yml").read_text()
    assert f'slo="ttft_p95"}}) or vector({defaults.SLO_TTFT_P95_S:g}))' in text
    assert f'slo="itl_p99"}}) or vector({defaults.SLO_ITL_P99_S:g}))' in text
