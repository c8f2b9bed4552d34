"""Builders for the few Grafana dashboard JSON shapes we use (schema of Grafana 11).

Every panel reads from the `${datasource}` variable, never from a hard-coded uid: the variable defaults
to the provisioned datasource (uid swm-prometheus) and falls back to any Prometheus elsewhere, such as
kube-prometheus-stack's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DATASOURCE_UID = "swm-prometheus"
DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39


@dataclass(frozen=True)
class Query:
    """One PromQL expression with its legend. Each lives once, in queries.py."""

    expr: str
    legend: str = ""
    instant: bool = False
    format: str = "time_series"


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    kind: str = "timeseries"  # timeseries | stat | heatmap | table
    unit: str = "short"
    description: str = ""
    width: int = 12
    height: int = 8
    min: float | None = None
    max: float | None = None
    thresholds: tuple[tuple[float, str], ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]
    # A variable to repeat the row by: one copy per selected value, each with its panels' queries narrowed
    # to that value (Grafana's row repeat). The title should name the variable, so the copies differ.
    repeat: str | None = None


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    query: str  # label_values(...) of the datasource


def _thresholds(steps: tuple[tuple[float, str], ...]) -> dict[str, Any]:
    return {
        "mode": "absolute",
        "steps": [{"color": "green", "value": None}, *({"color": color, "value": value} for value, color in steps)],
    }


def _target(query: Query, ref_id: str) -> dict[str, Any]:
    target: dict[str, Any] = {
        "refId": ref_id,
        "datasource": DATASOURCE_REF,
        "expr": query.expr,
        "legendFormat": query.legend or "__auto",
        "range": not query.instant,
        "instant": query.instant,
    }
    if query.format != "time_series":
        target["format"] = query.format
    return target


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.min is not None:
        defaults["min"] = panel.min
    if panel.max is not None:
        defaults["max"] = panel.max
    if panel.thresholds:
        defaults["thresholds"] = _thresholds(panel.thresholds)
        defaults["color"] = {"mode": "thresholds"}
    options: dict[str, Any] = {
        "tooltip": {"mode": "multi", "sort": "desc"},
        "legend": {"displayMode": "list", "placement": "bottom"},
    }
    if panel.kind == "stat":
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "area",
            "textMode": "value_and_name",
        }
    elif panel.kind == "heatmap":
        options = {"calculate": False, "yAxis": {"axisPlacement": "left"}, "color": {"scheme": "Oranges"}, "cellGap": 1}
    elif panel.kind == "table":
        options = {"showHeader": True}
    options.update(panel.options)
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE_REF,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": [_target(query, chr(ord("A") + index)) for index, query in enumerate(panel.queries)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    }


def _variable_json(variable: Variable) -> dict[str, Any]:
    # No `current`: Grafana picks from the live label values, so no stale default can linger.
    return {
        "name": variable.name,
        "label": variable.label,
        "type": "query",
        "datasource": DATASOURCE_REF,
        "query": {"query": variable.query, "refId": "StandardVariableQuery"},
        "definition": variable.query,
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "sort": 1,
    }


def _datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {"text": "Prometheus", "value": DATASOURCE_UID},
        "hide": 0,
        "refresh": 1,
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    variables: tuple[Variable, ...],
    rows: tuple[Row, ...],
    tags: tuple[str, ...] = (),
) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    next_id, y = 1, 0
    for row in rows:
        row_json: dict[str, Any] = {
            "id": next_id,
            "type": "row",
            "title": row.title,
            "collapsed": False,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
            "panels": [],
        }
        if row.repeat:
            row_json["repeat"] = row.repeat
        panels.append(row_json)
        next_id, y = next_id + 1, y + 1
        x, row_height = 0, 0
        for panel in row.panels:
            if x + panel.width > 24:
                x, y, row_height = 0, y + row_height, 0
            panels.append(_panel_json(panel, next_id, x, y))
            next_id += 1
            x += panel.width
            row_height = max(row_height, panel.height)
        y += row_height
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["serve-with-monitoring", *tags],
        "editable": False,
        "graphTooltip": 1,
        "timezone": "browser",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["serve-with-monitoring"],
                "asDropdown": True,
                "title": "serve-with-monitoring",
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "templating": {"list": [_datasource_variable(), *(_variable_json(v) for v in variables)]},
        "panels": panels,
    }
