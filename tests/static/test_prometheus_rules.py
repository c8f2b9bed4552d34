"""promtool on the shipped Prometheus config and rules: check config, check rules, test rules."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from launcher import defaults
from observability.slo_objectives import DEFAULT_OBJECTIVES, Objective
from observability.slo_rules import LATENCY_SLIS, bucket_problem, render

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "observability" / "prometheus"
PROMTOOL = Path(sys.executable).parent / "promtool"


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(PROMTOOL), *args], capture_output=True, text=True, check=False)


def test_rules_pass_promtool_check():
    result = promtool("check", "rules", *map(str, sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr


TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*_test.yml"))
NEVER_QUIET = {"Heartbeat"}  # fires always, by design: a dead man's switch


def shipped_alerts() -> list[dict]:
    return [
        rule
        for path in sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda path: path.name)
def test_every_alert_fires_and_stays_quiet_in_promtool_unit_tests(test_file):
    result = promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_has_a_firing_and_a_quiet_case():
    cases = [
        case
        for path in TEST_FILES
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    for alert in {rule["alert"] for rule in shipped_alerts()}:
        mine = [case for case in cases if case["alertname"] == alert]
        assert any(case["exp_alerts"] for case in mine), f"{alert} never fires in a test"
        if alert not in NEVER_QUIET:
            assert any(not case["exp_alerts"] for case in mine), f"{alert} never has a quiet case"


def test_the_slo_rules_are_generated_from_the_code():
    result = subprocess.run(
        [sys.executable, "-m", "observability.slo_rules", "--check"], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stderr


def test_every_alert_has_a_runbook_section_and_every_section_an_alert():
    runbook = (REPO / "docs" / "runbooks.md").read_text()
    sections = set(re.findall(r"^## (\w+)$", runbook, re.M))
    alerts = shipped_alerts()
    names = {rule["alert"] for rule in alerts}
    assert names - sections == set(), "alerts without a runbook section"
    assert sections - names == set(), "runbook sections without an alert"
    for rule in alerts:
        assert rule["annotations"]["runbook_url"] == f"{defaults.RUNBOOK_BASE_URL}#{rule['alert'].lower()}", rule[
            "alert"
        ]


def test_the_slo_bucket_bounds_are_the_ones_vllm_exports():
    page = (REPO / "tests" / "fixtures" / "vllm_metrics_0.32.txt").read_text()
    for sli in LATENCY_SLIS.values():
        bounds = re.findall(rf'^{sli.metric}_bucket{{[^}}]*le="([^"]+)"', page, re.M)
        assert tuple(float(b) for b in bounds if b != "+Inf") == sli.buckets, sli.metric


def test_an_slo_threshold_that_is_no_bucket_bound_names_the_nearest():
    assert bucket_problem(Objective("ttft", 0.99, 2.5)) is None
    assert bucket_problem(Objective("availability", 0.999)) is None
    assert bucket_problem(Objective("itl", 0.99, 0.25)) == (
        "--slo-itl-threshold 0.25: not a bucket bound of vllm:inter_token_latency_seconds, so no SLI can be "
        "computed for it; the nearest are 0.2 and 0.3"
    )
    assert bucket_problem(Objective("ttft", 0.99, 9999)).endswith("the nearest are 2560")


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


def test_the_latency_alerts_read_the_one_objective_of_their_sli():
    shipped = (PROMETHEUS_DIR / "rules" / "slo.yml").read_text()
    assert shipped == render(DEFAULT_OBJECTIVES)
    assert "swm_slo_seconds" not in shipped  # no second definition of the threshold, through the exporter
    changed = yaml.safe_load(render(DEFAULT_OBJECTIVES.changed("itl", threshold_s=0.2, target=0.95)))
    rules = {rule.get("alert") or rule["record"]: rule for group in changed["groups"] for rule in group["rules"]}
    assert rules["VllmInterTokenLatencyHigh"]["expr"] == 'swm:slo_error_ratio:rate5m{slo="itl"} > 0.05'
    assert "p95 is over 0.2 s" in rules["VllmInterTokenLatencyHigh"]["annotations"]["summary"]
    assert any('le="0.2"' in rule["expr"] for rule in changed["groups"][0]["rules"])  # the burn-rate ratios


_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _names_read(expression: str, recorded: dict[str, str], seen: frozenset[str] = frozenset()) -> set[str]:
    """The metric names an expression reads, through the recording rules it uses (their names stand for
    the series they are made from)."""
    names = set(_NAME.findall(re.sub(r'"[^"]*"', "", expression)))
    for name in names & (set(recorded) - seen):
        names |= _names_read(recorded[name], recorded, seen | {name})
    return names


def test_every_quiet_case_has_series_its_alert_reads():
    """A quiet case proves something only when the alert had data to judge: with none of its series in
    the test's input, the alert stays quiet whatever its expression says."""
    rules = [
        rule
        for path in sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]
    recorded: dict[str, str] = {}
    for rule in rules:  # one name may be recorded by several rules (one per SLO, per window)
        if "record" in rule:
            recorded[rule["record"]] = recorded.get(rule["record"], "") + "\n" + rule["expr"]
    alerts = {rule["alert"]: rule["expr"] for rule in rules if "alert" in rule}
    empty = []
    for path in TEST_FILES:
        for test in yaml.safe_load(path.read_text())["tests"]:
            given = {_NAME.match(series["series"]).group(0) for series in test.get("input_series", [])}
            for case in test.get("alert_rule_test", []):
                if not case["exp_alerts"] and not given & _names_read(alerts[case["alertname"]], recorded):
                    empty.append(f"{path.name}: {case['alertname']} at {case['eval_time']}")
    assert empty == []
