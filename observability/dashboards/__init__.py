"""Grafana dashboards, generated from code: `python -m observability.dashboards [--check]`."""
