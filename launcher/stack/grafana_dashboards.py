"""The dashboards Grafana loads, rendered into the state dir with this run's objectives: the SLO tiles mark
the user's thresholds. The shipped ones (observability/grafana/dashboards, and Kubernetes' ConfigMaps) hold
the defaults, as the shipped rules do."""

from __future__ import annotations

from pathlib import Path

from launcher.file_writes import write_for_container
from launcher.settings.settings import Settings
from launcher.state_layout import StateLayout
from observability.dashboards.__main__ import generate
from observability.files import HOME_DASHBOARD_NAME


def dashboards_dir(layout: StateLayout) -> Path:
    return layout.generated / "grafana" / "dashboards"


def home_dashboard(layout: StateLayout) -> Path:
    return dashboards_dir(layout) / HOME_DASHBOARD_NAME


def write_dashboards(settings: Settings, layout: StateLayout) -> Path:
    """World-readable, as compose's Grafana reads them as its own user (see file_writes.write_for_container)."""
    directory = dashboards_dir(layout)
    for name, text in generate(settings.objectives).items():
        write_for_container(directory / name, text)
    return directory
