"""The launcher's children as the launcher sees them, plus what psutil sees of their process trees."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client.core import Metric

from launcher.states import STALE_AFTER_S, ChildStatus, State
from observability.exporter.collector import counter, gauge
from observability.exporter.vllm_tree import SupervisorView

STATES = tuple(state.value for state in State)


class SupervisorCollector:
    name = "supervisor"

    def __init__(self, view: SupervisorView) -> None:
        self._view = view

    def collect(self) -> list[Metric]:
        status = self._view.status()
        if status is None:
            return [gauge("swm_supervisor_up", "1 while the launcher's state file is fresh.", (), [((), 0.0)])]
        age = max(0.0, time.time() - status.updated_at)
        # Age alone decides: in a sidecar the launcher's pid is in another PID namespace.
        fresh = age < STALE_AFTER_S
        head = [
            gauge(
                "swm_supervisor_up", "1 while the launcher's state file is fresh.", (), [((), 1.0 if fresh else 0.0)]
            ),
            gauge(
                "swm_supervisor_state_age_seconds", "Seconds since the launcher last wrote its state.", (), [((), age)]
            ),
        ]
        if not fresh:
            return head  # a dead launcher's last words would claim its children are fine
        children: list[ChildStatus] = status.children
        table = self._view.processes.get(child.pid for child in children if child.pid)
        usage = {child.name: table.usage(child.pid) if child.pid else (0.0, 0.0, 0) for child in children}

        def rows(value: Callable[[ChildStatus], float | None]) -> list[tuple[list[str], float]]:
            return [([child.name], float(value(child))) for child in children if value(child) is not None]

        # The objectives (slo_*) reach Prometheus once, through the SLO rules the launcher renders.
        info = [([key, value], 1.0) for key, value in sorted(status.info.items()) if not key.startswith("slo_")]
        return [
            gauge(
                "swm_supervisor_up", "1 while the launcher's state file is fresh.", (), [((), 1.0 if fresh else 0.0)]
            ),
            gauge(
                "swm_supervisor_state_age_seconds", "Seconds since the launcher last wrote its state.", (), [((), age)]
            ),
            gauge("swm_supervisor_info", "What the launcher serves (value 1).", ("key", "value"), info),
            gauge(
                "swm_child_up",
                "1 while the child's process is running.",
                ("child",),
                rows(lambda c: 1 if c.pid is not None else 0),
            ),
            gauge(
                "swm_child_ready",
                "1 while the child passes its health check.",
                ("child",),
                rows(lambda c: 1 if c.state == "healthy" else 0),
            ),
            gauge(
                "swm_child_state",
                "1 for the child's current supervision state.",
                ("child", "state"),
                [([child.name, state], 1.0 if child.state == state else 0.0) for child in children for state in STATES],
            ),
            counter(
                "swm_child_restarts",
                "Restarts since the launcher started.",
                ("child",),
                rows(lambda c: c.restarts_total),
            ),
            gauge(
                "swm_child_last_exit_code",
                "Exit code of the child's last run (negative: killed by signal).",
                ("child",),
                rows(lambda c: c.last_exit_code),
            ),
            gauge(
                "swm_child_start_time_seconds",
                "When the child's current run started (Unix time).",
                ("child",),
                rows(lambda c: c.started_at if c.pid is not None else None),
            ),
            gauge(
                "swm_child_resident_memory_bytes",
                "Resident memory summed over the child's process tree.",
                ("child",),
                [([name], rss) for name, (rss, _, count) in usage.items() if count],
            ),
            counter(
                "swm_child_cpu_seconds",
                "CPU seconds summed over the child's process tree.",
                ("child",),
                [([name], cpu) for name, (_, cpu, count) in usage.items() if count],
            ),
            gauge(
                "swm_child_processes",
                "Processes in the child's tree.",
                ("child",),
                [([name], float(count)) for name, (_, _, count) in usage.items()],
            ),
            counter(
                "swm_child_failures",
                "Failed runs by cause (exited, unhealthy, engine_lost, stalled, startup_timeout, could_not_start).",
                ("child", "cause"),
                [([child.name, cause], float(n)) for child in children for cause, n in sorted(child.failures.items())],
            ),
            *_engine_families(children),
            *_incident_families(children),
        ]


def _engine_families(children: list[ChildStatus]) -> list[Metric]:
    """What the launcher read from each child's own metrics: progress, and names the dashboards miss."""
    engines = [(child.name, child.engine) for child in children if child.engine is not None]
    return [
        gauge(
            "swm_vllm_stall_timeout_seconds",
            "The launcher restarts an engine with work pending and no progress for this long (0: off).",
            ("child",),
            [([name], report.stall_timeout_s) for name, report in engines],
        ),
        gauge(
            "swm_vllm_last_progress_timestamp_seconds",
            "When the engine was last seen idle or making progress (Unix time).",
            ("child",),
            [([name], report.last_progress_at) for name, report in engines if report.last_progress_at is not None],
        ),
        gauge(
            "swm_vllm_last_token_timestamp_seconds",
            "When the engine's generated-token count last moved, as the launcher saw it (Unix time).",
            ("child",),
            [([name], report.last_token_at) for name, report in engines if report.last_token_at is not None],
        ),
        counter(
            "swm_canary_requests",
            "The launcher's canary completions, sent while the server is idle, by outcome (ok, failed).",
            ("child", "outcome"),
            [
                ([name, outcome], float(count))
                for name, report in engines
                if report.canary_interval_s > 0
                for outcome, count in (("ok", report.canaries_ok), ("failed", report.canaries_failed))
            ],
        ),
        gauge(
            "swm_canary_last_latency_seconds",
            "How long the last canary completion took.",
            ("child",),
            [([name], report.canary_last_latency_s) for name, report in engines if report.canary_last_latency_s],
        ),
        gauge(
            "swm_canary_last_timestamp_seconds",
            "When the last canary completion finished (Unix time).",
            ("child",),
            [([name], report.canary_last_at) for name, report in engines if report.canary_last_at is not None],
        ),
        gauge(
            "swm_vllm_metric_missing",
            "1 for each vllm: metric the shipped dashboards or rules use that the running vLLM does not export.",
            ("child", "name"),
            [([name, missing], 1.0) for name, report in engines for missing in report.missing_metrics or []],
        ),
    ]


def _incident_families(children: list[ChildStatus]) -> list[Metric]:
    """Incident bundles the launcher wrote (launcher/incidents), so that every incident reaches a person."""
    last = [(child.name, child.last_incident) for child in children if child.last_incident is not None]
    return [
        counter(
            "swm_incidents",
            "Unplanned events the launcher took an incident bundle of, by reason.",
            ("child", "reason"),
            [([child.name, reason], float(n)) for child in children for reason, n in sorted(child.incidents.items())],
        ),
        gauge(
            "swm_last_incident_timestamp_seconds",
            "When the child's last incident happened (Unix time), with its reason and where its bundle is.",
            ("child", "reason", "bundle"),
            [([name, note.reason, note.bundle], note.at) for name, note in last],
        ),
    ]
