"""Writes the dashboards into observability/grafana/dashboards, or checks them (--check).

--check fails when a committed dashboard differs from what the code generates, or when a query names
a metric that neither the installed vLLM, nor our exporter, nor a recording rule defines.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from observability.dashboards import gpu, health, vllm_serving
from observability.dashboards.metric_names import (
    ALERTMANAGER_METRICS,
    PROMETHEUS_BUILTINS,
    exporter_metric_names,
    is_known,
    names_in,
    recording_rule_names,
    vllm_metric_names,
)
from observability.files import GRAFANA_DASHBOARDS
from observability.slo_objectives import DEFAULT_OBJECTIVES, Objectives

DASHBOARD_DIR = GRAFANA_DASHBOARDS


def generate(objectives: Objectives = DEFAULT_OBJECTIVES) -> dict[str, str]:
    """File name -> JSON text, for every dashboard: the SLO tiles drawn with these objectives."""
    rendered = {}
    for board in (vllm_serving.build(objectives), gpu.build(), health.build()):
        rendered[f"{board['uid']}.json"] = json.dumps(board, indent=2, sort_keys=False) + "\n"
    return rendered


def queries_of(board: dict[str, Any]) -> list[str]:
    exprs = [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]
    exprs += [variable.get("definition", "") for variable in board["templating"]["list"]]
    return exprs


def unknown_metrics(rendered: dict[str, str], vllm_names: set[str]) -> list[str]:
    known = vllm_names | exporter_metric_names() | recording_rule_names() | PROMETHEUS_BUILTINS | ALERTMANAGER_METRICS
    problems = []
    for name, text in rendered.items():
        for expr in queries_of(json.loads(text)):
            problems += [
                f"{name}: {metric} (in {expr})" for metric in sorted(names_in(expr)) if not is_known(metric, known)
            ]
    return problems


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    args = options.parse_args()
    rendered = generate()
    if not args.check:
        DASHBOARD_DIR.mkdir(parents=True, exist_ok=True)
        for name, text in rendered.items():
            (DASHBOARD_DIR / name).write_text(text)
        print(f"wrote {len(rendered)} dashboards to {DASHBOARD_DIR}")
        return 0
    failures = []
    for name, text in rendered.items():
        path = DASHBOARD_DIR / name
        if not path.exists() or path.read_text() != text:
            failures.append(f"{path} is out of date: run python -m observability.dashboards")
    vllm_names = vllm_metric_names()
    if vllm_names is None:
        failures.append("vLLM is not installed here, so its metric names cannot be checked")
    else:
        failures += [f"unknown metric {problem}" for problem in unknown_metrics(rendered, vllm_names)]
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
