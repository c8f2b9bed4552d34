"""The generated Grafana dashboards and their provisioning, checked as files (Grafana cannot run here).

Whether each panel's query returns data is checked against a live Prometheus in
tests/integration/test_stack_native.py.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from observability.dashboards.__main__ import DASHBOARD_DIR, generate, queries_of
from observability.dashboards.grafana_model import DATASOURCE_UID
from observability.dashboards.metric_names import METRIC_TOKEN, PROMETHEUS_BUILTINS, names_in

REPO = Path(__file__).resolve().parents[2]
PROVISIONING = REPO / "observability" / "grafana" / "provisioning"
BOARDS = {name: json.loads(text) for name, text in generate().items()}


def test_generator_check_mode_passes_committed_dashboards_and_known_metric_names():
    result = subprocess.run(
        [sys.executable, "-m", "observability.dashboards", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_check_mode_fails_on_a_metric_nobody_exports(monkeypatch):
    from observability.dashboards import __main__ as generator

    rendered = {
        "x.json": json.dumps(
            {"panels": [{"targets": [{"expr": "rate(vllm:gpu_cache_usage_perc[5m])"}]}], "templating": {"list": []}}
        )
    }
    problems = generator.unknown_metrics(rendered, {"vllm:kv_cache_usage_perc"})
    assert problems and "vllm:gpu_cache_usage_perc" in problems[0]


def test_three_dashboards_are_committed():
    assert sorted(path.name for path in DASHBOARD_DIR.glob("*.json")) == [
        "swm-gpu.json",
        "swm-health.json",
        "swm-vllm-serving.json",
    ]


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panel_ids_are_unique(name):
    ids = [panel["id"] for panel in BOARDS[name]["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_no_panels_overlap_and_all_fit_the_grid(name):
    cells = {}
    for panel in BOARDS[name]["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_datasource_reference_resolves_to_the_provisioned_uid(name):
    board = BOARDS[name]
    provisioned = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())["datasources"]
    assert [source["uid"] for source in provisioned] == [DATASOURCE_UID]
    variable = next(v for v in board["templating"]["list"] if v["name"] == "datasource")
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    assert variable["current"]["value"] == DATASOURCE_UID
    references = [panel.get("datasource") for panel in board["panels"] if panel["type"] != "row"]
    references += [target["datasource"] for panel in board["panels"] for target in panel.get("targets", [])]
    references += [v["datasource"] for v in board["templating"]["list"] if "datasource" in v]
    for reference in references:
        assert reference == {"type": "prometheus", "uid": "${datasource}"}
    text = json.dumps(board)
    assert "edx8memhpd9tsa" not in text  # the seed's hard-coded uid


def test_no_removed_metric_and_no_rate_of_sum_latency():
    removed = (
        "vllm:gpu_cache_usage_perc",
        "vllm:cpu_cache_usage_perc",
        "vllm:num_requests_swapped",
        "vllm:gpu_prefix_cache",
        "vllm:time_per_output_token_seconds",
    )
    for board in BOARDS.values():
        for expr in queries_of(board):
            assert not any(name in expr for name in removed), expr
            assert not ("_seconds_sum" in expr and "_count" not in expr), f"rate(_sum) is not a latency: {expr}"


def test_vllm_dashboard_has_the_variables_without_stale_defaults():
    board = BOARDS["swm-vllm-serving.json"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert {"model_name", "instance", "engine"} <= set(variables)
    for name in ("model_name", "instance", "engine"):
        assert "current" not in variables[name], name
        assert variables[name]["definition"].startswith("label_values(")


def test_gpu_dashboard_reads_dcgm_names():
    names = set().union(*(names_in(expr) for expr in queries_of(BOARDS["swm-gpu.json"])))
    assert {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_POWER_USAGE"} <= names


def test_provisioning_points_at_the_dashboards_and_the_datasource_url_from_the_environment():
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "serve-with-monitoring.yaml").read_text())["providers"]
    assert providers[0]["options"]["path"] == "${SWM_DASHBOARDS_DIR}"
    source = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())["datasources"][0]
    assert source["url"] == "${SWM_PROMETHEUS_URL}"
    assert source["editable"] is False


# -- many hosts at once (a central store that hosts push to: --remote-write) -----------------------------

FLEET_BOARDS = ("swm-vllm-serving.json", "swm-gpu.json", "swm-health.json")
HOST_FILTER = 'host=~"$host"'
# Every metric a query names: ours and vLLM's by their prefixes, Prometheus' own by name. Each is followed by
# its selector, so `name{...}` is where the filter must be.
_OURS_AND_VLLMS = METRIC_TOKEN.pattern.removeprefix(r"\b(").removesuffix(r")\b")
_METRIC_AT = re.compile(rf"(?<![\w:])(?:{_OURS_AND_VLLMS}|{'|'.join(sorted(PROMETHEUS_BUILTINS))})(?![\w:(])")


def unfiltered_selectors(expr: str) -> list[str]:
    """Each metric in the expression whose selector does not hold the host filter."""
    missing = []
    for found in _METRIC_AT.finditer(expr):
        rest = expr[found.end() :]
        selector = rest[: rest.index("}") + 1] if rest.startswith("{") else ""
        if HOST_FILTER not in selector:
            missing.append(found.group(0) + selector)
    return missing


def test_the_selector_check_sees_a_metric_without_the_host_filter():
    assert unfiltered_selectors('count(ALERTS{alertstate="firing"}) or vector(0)') == ['ALERTS{alertstate="firing"}']
    assert unfiltered_selectors("up") == ["up"]
    assert unfiltered_selectors('rate(vllm:prompt_tokens_total{model_name=~"$model_name"}[5m])') != []
    assert unfiltered_selectors('swm:slo_objective:ratio{host=~"$host"} / up{host=~"$host", job="x"}') == []


@pytest.mark.parametrize("name", FLEET_BOARDS)
def test_the_fleet_dashboards_have_a_multi_value_host_variable_from_a_series_every_host_has(name):
    variables = {v["name"]: v for v in BOARDS[name]["templating"]["list"]}
    host = variables["host"]
    assert host["definition"] == "label_values(up, host)"
    assert host["multi"] is True and host["includeAll"] is True
    # All is `.*`, which matches a series without the label: a Prometheus queried where it runs shows none.
    assert host["allValue"] == ".*"
    assert "current" not in host
    names = [v["name"] for v in BOARDS[name]["templating"]["list"]]
    assert names.index("host") == 1  # right after the data source: the others are narrowed by it


@pytest.mark.parametrize("name", FLEET_BOARDS)
def test_every_query_of_the_fleet_dashboards_filters_by_host(name):
    board = BOARDS[name]
    exprs = [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]
    exprs += [v["definition"] for v in board["templating"]["list"] if v.get("type") == "query" and v["name"] != "host"]
    assert exprs
    problems = [f"{expr}: {selector}" for expr in exprs for selector in unfiltered_selectors(expr)]
    assert problems == []


def repeat_problems(board: dict) -> list[str]:
    variables = {v["name"]: v for v in board["templating"]["list"]}
    problems = []
    for panel in (panel for panel in board["panels"] if "repeat" in panel):
        variable = variables.get(panel["repeat"])
        if variable is None:
            problems.append(f"{panel['title']} repeats by {panel['repeat']}, which is no variable")
        elif not (variable.get("multi") or variable.get("includeAll")):
            problems.append(f"{panel['title']} repeats by {panel['repeat']}, which holds one value")
        elif f"${panel['repeat']}" not in panel["title"]:  # else the copies look the same
            problems.append(f"{panel['title']} does not name ${panel['repeat']}")
    return problems


@pytest.mark.parametrize("name", FLEET_BOARDS)
def test_repeats_name_a_multi_value_variable_the_dashboard_has(name):
    board = BOARDS[name]
    assert any("repeat" in panel for panel in board["panels"]), "a per-host repeat"
    assert repeat_problems(board) == []


def test_a_repeat_by_a_variable_the_dashboard_lacks_is_named():
    board = json.loads(json.dumps(BOARDS["swm-health.json"]))
    row = next(panel for panel in board["panels"] if "repeat" in panel)
    row["repeat"] = "hosts"
    assert repeat_problems(board) == [f"{row['title']} repeats by hosts, which is no variable"]


def test_the_health_state_is_a_row_per_host():
    rows = [panel for panel in BOARDS["swm-health.json"]["panels"] if panel["type"] == "row"]
    state = next(row for row in rows if row["title"].startswith("Supervised children"))
    assert state["repeat"] == "host"
