"""Dashboard c: health of the stack itself: targets, restarts, the exporter, alerts."""

from __future__ import annotations

from typing import Any

from observability.dashboards import queries as q
from observability.dashboards.grafana_model import Panel, Row, dashboard

ROWS = (
    Row(
        "Alerts and targets",
        (
            Panel("Alerts", q.ALERTS_FIRING, "stat", width=6, height=6, thresholds=((1, "red"),)),
            Panel("Alerts firing or pending", q.ALERTS_TABLE, "table", width=18, height=6),
            Panel("Targets up", q.TARGETS_UP, min=0, max=1),
            Panel("Scrape duration", q.SCRAPE_DURATION, unit="s"),
        ),
    ),
    Row(
        "Supervised children: $host",
        (
            Panel("State", q.CHILD_STATE, "table", width=8),
            Panel("Restarts (last hour)", q.CHILD_RESTARTS, width=16),
            Panel(
                "Seconds since the launcher updated its state",
                q.SUPERVISOR_STATE_AGE,
                unit="s",
                thresholds=((60, "red"),),
                description="Rewritten every 10 s; over a minute, alert SupervisorStateStale.",
            ),
            Panel(
                "State dir's disk free",
                q.STATE_DIR_DISK_FREE,
                unit="percentunit",
                min=0,
                max=1,
                description="Alert StateDirDiskFillingUp under 5 %, or under 25 % and filling within a day.",
            ),
            Panel("Resident memory per process tree", q.CHILD_RSS, unit="bytes"),
            Panel("CPU per process tree", q.CHILD_CPU, unit="percentunit"),
        ),
        repeat=q.HOST_VARIABLE.name,  # each host's children side by side: which one is restarting
    ),
    Row(
        "Incidents and the canary",
        (
            Panel(
                "Incidents (last 24 hours)",
                q.INCIDENTS_24H,
                "stat",
                width=6,
                thresholds=((1, "orange"),),
                description="Unplanned events the launcher took a bundle of, by reason (alert VllmIncident); "
                "`serve-with-monitoring incidents` on the host lists them.",
            ),
            Panel(
                "Canary completions (last hour)",
                q.CANARY_OUTCOMES,
                width=9,
                description="One-token completions the launcher sends an idle server: a synthetic availability "
                "signal (alert VllmCanaryFailing on errors; a hung one is a stall).",
            ),
            Panel("Canary latency", q.CANARY_LATENCY, unit="s", width=9),
        ),
    ),
    Row(
        "Notifications (Alertmanager)",
        (
            Panel("Notifications sent", q.NOTIFICATIONS_SENT, unit="ops", width=12),
            Panel(
                "Notifications failed",
                q.NOTIFICATIONS_FAILED,
                unit="ops",
                width=12,
                thresholds=((0.0001, "red"),),
                description="Any failure means an alert may not have reached anyone (alert "
                "AlertmanagerNotificationsFailing).",
            ),
        ),
    ),
    Row(
        "Exporter",
        (
            Panel("Collectors up", q.EXPORTER_COLLECTOR_UP, min=0, max=1, width=8),
            Panel("Seconds since last collection", q.EXPORTER_COLLECTION_AGE, unit="s", width=8),
            Panel("Collection duration", q.EXPORTER_DURATION, unit="s", width=8),
            Panel("Collection errors (last hour)", q.EXPORTER_ERRORS, width=8),
            Panel("NVML up", q.NVML_UP, min=0, max=1, width=8),
            Panel("Host CPU and memory in use", (*q.HOST_CPU, *q.HOST_MEMORY), unit="percentunit", width=8),
        ),
    ),
)


def build() -> dict[str, Any]:
    return dashboard(
        "swm-health",
        "serve-with-monitoring health",
        "Is the monitoring itself working: targets, restarts, exporter, alerts.",
        (q.HOST_VARIABLE,),
        ROWS,
        tags=("health",),
    )
