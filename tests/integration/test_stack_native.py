"""Native stack: Debian's real Prometheus, run by the launcher, scraping the real vLLM and the real exporter.

One extra scrape target is a stand-in: the exporter over the NVML HARDWARE STAND-IN
(tests/support/standins), because there is no GPU here and the GPU dashboard needs GPU series to query.
Grafana cannot run here (no package, no Docker engine); its dashboards are checked by running every
panel query against this Prometheus.
"""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from observability.dashboards.__main__ import generate
from observability.exporter.labels import default_hostname
from tests.support.launcher_process import REPO_ROOT, alive, http_get
from tests.support.metrics_text import parse_metrics
from tests.support.prometheus_api import PrometheusApi
from tests.support.standin_gpu_target import standin_gpu_target as standin_gpu_target_running

pytestmark = pytest.mark.vllm

LAUNCHER = Path(sys.executable).parent / "serve-with-monitoring"
PROMTOOL = Path(sys.executable).parent / "promtool"
RULES = REPO_ROOT / "observability" / "prometheus" / "rules"
# Recorded every 5 minutes over a day, from a series the stand-in GPU starts only with this module: its first
# value may come after the panels are read. Its figure is checked by promtool (efficiency_test.yml).
DAILY_RECORDS = ("swm:vllm_idle_gpu_cost:1d",)


@pytest.fixture(scope="module")
def standin_gpu_target(shared_server, prometheus):
    """HARDWARE STAND-IN: the exporter over fake NVML, added as one more exporter target. It shows the real vLLM's
    tree on its first GPU and carries this host's name as the launcher's vLLM target does, so that the efficiency
    records (GPU energy joined with vLLM's tokens) have data for the dashboard's Efficiency row."""
    with standin_gpu_target_running(
        shared_server.state_dir,
        "exporter-standin-gpu",
        "--interval",
        "2",
        "--xid-after",
        "12",
        "--state-file",
        str(shared_server.state_dir / "supervisor.json"),
        "--vllm-on-gpus",
        "1",
        labels={"hostname": default_hostname()},
    ) as address:
        yield address


@pytest.fixture(scope="module")
def loaded(shared_server, prometheus, standin_gpu_target):
    """A short load through `serve-with-monitoring bench`, then data in Prometheus for every panel."""
    started = time.time()
    result = subprocess.run(
        [
            str(LAUNCHER),
            "bench",
            "--state-dir",
            str(shared_server.state_dir),
            "--num-prompts",
            "40",
            "--request-rate",
            "20",
            "--input-len",
            "32",
            "--output-len",
            "16",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Successful requests:" in result.stdout
    prometheus.wait_for("rate(vllm:generation_tokens_total[1m]) > 0")
    prometheus.wait_for("swm:vllm_ttft_seconds:p95_5m")
    prometheus.wait_for("DCGM_FI_PROF_SM_ACTIVE")
    prometheus.wait_for("increase(swm_gpu_xid_events_total[10m]) > 0")
    prometheus.wait_for('ALERTS{alertname="GpuXidError"}')
    # The 28-day compliance group runs every 5 minutes: its first run may have come before any request.
    prometheus.wait_for("swm:slo_attainment:ratio28d", timeout=330)
    return started


def test_every_target_is_up(shared_server, prometheus):
    deadline = time.monotonic() + 60
    while True:
        health = {(t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in prometheus.targets()}
        jobs = {job for job, _ in health}
        if jobs >= {"vllm", "swm-exporter", "prometheus"} and all(h == "up" for h in health.values()):
            break
        assert time.monotonic() < deadline, health
        time.sleep(1)
    assert ("vllm", f"127.0.0.1:{shared_server.port}") in health
    assert ("swm-exporter", f"127.0.0.1:{shared_server.exporter_port}") in health


def test_prometheus_listens_on_loopback_only(shared_server, prometheus):
    pid = shared_server.child_state("prometheus")["pid"]
    listening = {
        (c.laddr.ip, c.laddr.port) for c in psutil.Process(pid).net_connections("tcp") if c.status == psutil.CONN_LISTEN
    }
    assert listening == {("127.0.0.1", shared_server.prometheus_port)}


def test_promtool_checks_the_shipped_and_the_generated_config(shared_server):
    for config in (
        REPO_ROOT / "observability" / "prometheus" / "prometheus.yml",
        shared_server.state_dir / "generated" / "prometheus" / "prometheus.yml",
    ):
        result = subprocess.run(
            [str(PROMTOOL), "check", "config", str(config)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_rules_are_loaded_without_errors(prometheus):
    groups = prometheus.rules()
    loaded_names = {rule["name"] for group in groups for rule in group["rules"]}
    shipped = {
        rule.get("alert") or rule.get("record")
        for path in RULES.glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    }
    assert shipped <= loaded_names
    failing = [
        (rule["name"], rule.get("lastError"))
        for group in groups
        for rule in group["rules"]
        if rule.get("health") == "err"
    ]
    assert failing == []


def test_every_recording_rule_evaluates_to_data_after_load(loaded, prometheus):
    records = [
        rule["record"]
        for group in yaml.safe_load((RULES / "recording.yml").read_text())["groups"]
        for rule in group["rules"]
    ]
    # A record of a gauge is empty for an evaluation or two after a restart of vLLM (a test before may have
    # made one): each is given two of its group's 30 s intervals.
    deadline = time.monotonic() + 70
    empty = records
    while empty and time.monotonic() < deadline:
        empty = [name for name in empty if not prometheus.query(name)]
        time.sleep(1 if empty else 0)
    assert empty == []


def test_every_alert_expression_parses_and_runs(loaded, prometheus):
    for group in yaml.safe_load((RULES / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            prometheus.query(rule["expr"])  # raises on a parse or evaluation error


# -- dashboards -----------------------------------------------------------------------------------


def _variable_values(prometheus: PrometheusApi, definition: str, substitute) -> list[str]:
    match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", definition.strip())
    assert match, definition
    selector, label = substitute(match.group(1)), match.group(2)
    return prometheus.label_values(label, selector)


def _regex_in_promql_string(value: str) -> str:
    """As Grafana formats a multi-value variable: regex-escaped, inside a PromQL double-quoted string."""
    return re.sub(r"([\\$^*{}\[\]'+?.()|])", r"\\\\\1", value)


def _resolver(prometheus: PrometheusApi, board: dict):
    """Resolves the dashboard's variables from live label values, in order, as Grafana does."""
    values: dict[str, str] = {"__rate_interval": "20s", "datasource": "swm-prometheus"}

    def substitute(expr: str) -> str:
        # By whole names, as Grafana does: $host is not the start of $hostname
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m[1] or m[2], m[0]), expr)

    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        found = _variable_values(prometheus, variable["definition"], substitute)
        if not found and variable["name"] == "host":
            # `host` is the external label of remote write, which a query where Prometheus runs never shows:
            # Grafana then selects All, whose value matches the series without the label.
            values["host"] = variable["allValue"]
            continue
        assert found, f"{board['uid']}: variable {variable['name']} has no values"
        values[variable["name"]] = "(" + "|".join(_regex_in_promql_string(value) for value in found) + ")"
    return substitute


@pytest.mark.parametrize("dashboard_file", sorted(generate()))
def test_every_panel_query_returns_data(shared_server, loaded, prometheus, dashboard_file):
    """The dashboards as Grafana gets them: rendered into the state dir with the server's objectives."""
    board = json.loads((shared_server.state_dir / "generated" / "grafana" / "dashboards" / dashboard_file).read_text())
    substitute = _resolver(prometheus, board)
    end = time.time()
    empty = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = substitute(target["expr"])
            assert "$" not in expr, expr
            if target.get("instant"):
                result = prometheus.query(expr)
            else:
                # Now, if not over the load: the 28-day compliance group records only every 5 minutes.
                result = prometheus.query_range(expr, loaded - 60, end, 5) or prometheus.query(expr)
            if not result and not target["expr"].startswith(DAILY_RECORDS):
                empty.append(f"{panel['title']}: {target['expr']}")
    assert empty == [], "\n".join(empty)


def test_a_killed_prometheus_is_restarted_and_vllm_is_untouched(shared_server, prometheus):
    vllm_pid = shared_server.vllm_pid()
    before = shared_server.child_state("prometheus")
    psutil.Process(before["pid"]).send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = shared_server.child_state("prometheus")
        if state["restarts_total"] > before["restarts_total"] and state["state"] == "healthy":
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"Prometheus did not come back: {state}")
    assert shared_server.vllm_pid() == vllm_pid
    assert shared_server.vllm_state() == "healthy"


def test_frozen_helpers_are_continued_and_restarted_in_seconds_not_after_the_grace_period(shared_server):
    """SIGSTOP of the exporter and Prometheus: their checks fail, their stop does not wait out the 30 s grace
    period for processes that cannot act on SIGTERM, and new ones are healthy well before it would have ended."""
    before = {name: shared_server.child_state(name) for name in ("exporter", "prometheus")}
    lines_before = len(shared_server.launcher_lines())
    frozen_at = time.monotonic()
    for state in before.values():
        psutil.Process(state["pid"]).send_signal(signal.SIGSTOP)
    stop_seen, replaced, healthy_again = {}, {}, {}
    deadline = frozen_at + 120
    while len(healthy_again) < len(before):
        assert time.monotonic() < deadline, {name: shared_server.child_state(name) for name in before}
        for name, old in before.items():
            state = shared_server.child_state(name)
            now = time.monotonic()
            if state is None:
                continue
            if state["state"] in ("stopping", "backoff") or state["pid"] != old["pid"]:
                stop_seen.setdefault(name, now)
            if state["pid"] not in (None, old["pid"]):
                replaced.setdefault(name, now)
            if name not in healthy_again and name in replaced and state["state"] == "healthy":
                healthy_again[name] = now
        time.sleep(0.25)
    new_lines = shared_server.launcher_lines()[lines_before:]
    for name in before:
        assert not alive(before[name]["pid"]), name
    assert sum("continued it so that it can act on SIGTERM" in line for line in new_lines) >= 2, new_lines
    assert not any("did not stop within its grace period" in line for line in new_lines)
    # The bound is the behaviour: from the failed checks' verdict to a new process, and on to that process
    # healthy, less than the 30 s grace period that a stop waiting on frozen processes would spend alone (how
    # long the checks take to give up is the health interval's business, not the stop's).
    stops = {name: replaced[name] - stop_seen[name] for name in before}
    back = {name: healthy_again[name] - stop_seen[name] for name in before}
    assert max(stops.values()) < 30, stops
    assert max(back.values()) < 30, back
    assert shared_server.vllm_state() == "healthy"
    print("stop to a new process:", {name: round(seconds, 1) for name, seconds in stops.items()})
    print("verdict to healthy again:", {name: round(seconds, 1) for name, seconds in back.items()})
    print("freeze to healthy again:", {name: round(healthy_again[name] - frozen_at, 1) for name in before})


def test_sighup_makes_prometheus_reload_its_configuration_without_a_restart(shared_server, prometheus):
    """The README's way to apply an edited configuration without the lifecycle API (which stays off)."""
    config_file = shared_server.state_dir / "generated" / "prometheus" / "prometheus.yml"
    original = config_file.read_text()
    config = yaml.safe_load(original)
    config["global"]["external_labels"] = {"reload_check": "sighup"}
    before = shared_server.child_state("prometheus")
    own = parse_metrics(http_get(shared_server.prometheus_url + "/metrics")[1])
    reloaded_at = own["prometheus_config_last_reload_success_timestamp_seconds"][0][1]
    try:
        config_file.write_text(yaml.safe_dump(config))
        psutil.Process(before["pid"]).send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while "reload_check: sighup" not in prometheus.loaded_config():
            assert time.monotonic() < deadline, "Prometheus did not load the edited configuration on SIGHUP"
            time.sleep(0.5)
    finally:
        config_file.write_text(original)
        psutil.Process(before["pid"]).send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while "reload_check" in prometheus.loaded_config():
        assert time.monotonic() < deadline, "Prometheus did not load the restored configuration on SIGHUP"
        time.sleep(0.5)
    # From Prometheus' own page: the `prometheus` job scrapes it only every 30 s.
    own = parse_metrics(http_get(shared_server.prometheus_url + "/metrics")[1])
    assert own["prometheus_config_last_reload_success_timestamp_seconds"][0][1] > reloaded_at
    assert own["prometheus_config_last_reload_successful"][0][1] == 1
    after = shared_server.child_state("prometheus")
    assert after["pid"] == before["pid"] and after["restarts_total"] == before["restarts_total"]
    assert after["state"] == "healthy"
