"""Chooses how Prometheus and Grafana run (--stack) and what the launcher supervises for them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from launcher import defaults
from launcher.addresses import is_loopback_host
from launcher.errors import PreflightError, UsageError
from launcher.installed_tools import find_tool
from launcher.preflight import check_port_free
from launcher.settings.settings import Settings
from launcher.stack.alertmanager_child import (
    alertmanager_address,
    alertmanager_child,
    alertmanager_url,
    check_alertmanager,
    find_alertmanager,
    find_amtool,
)
from launcher.stack.alertmanager_config import check_config, has_receiver, write_config
from launcher.stack.docker import (
    compose_down,
    docker_engine_answers,
    docker_stack_child,
    write_compose_prometheus_config,
)
from launcher.stack.files import compose_file
from launcher.stack.grafana_child import find_grafana, grafana_child, grafana_url
from launcher.stack.grafana_credentials import GrafanaCredentials, describe, ensure_admin_password
from launcher.stack.grafana_dashboards import write_dashboards
from launcher.stack.prometheus_child import prometheus_child, prometheus_url, write_native_config
from launcher.stack.prometheus_config_check import check_prometheus_config
from launcher.stack.prometheus_rules import check_extra_rules, check_objectives, write_rules
from launcher.stack.remote_write import plan_remote_write
from launcher.stack.secured_endpoint import OPEN, StackAccess
from launcher.state_layout import StateLayout
from launcher.supervision.child_spec import ChildSpec

log = logging.getLogger(__name__)


@dataclass
class StackPlan:
    mode: str  # docker | native | none
    children: list[ChildSpec] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    credentials: GrafanaCredentials | None = None
    on_shutdown: list[Callable[[], None]] = field(default_factory=list)
    announcements: dict[str, list[str]] = field(default_factory=dict)  # child name -> lines, once it is healthy
    alertmanager: str | None = None  # host:port Prometheus sends its alerts to, when the stack has one


def find_prometheus() -> Path | None:
    return find_tool("prometheus")


def resolve_mode(requested: str) -> str:
    if requested != "auto":
        return requested
    if compose_file() is not None and docker_engine_answers():
        return "docker"
    if find_prometheus() is not None:
        return "native"
    log.warning(
        "no Docker engine and no prometheus binary: running without Prometheus and Grafana "
        "(install Docker, or Prometheus with `apt-get install prometheus`, or pass --stack none)"
    )
    return "none"


def _check_ports(settings: Settings, grafana: bool, alertmanager: bool) -> None:
    check_port_free(defaults.LOOPBACK, settings.prometheus_port, "Prometheus (--prometheus-port)")
    if grafana:
        check_port_free(defaults.LOOPBACK, settings.grafana_port, "Grafana (--grafana-port)")
    if alertmanager:
        check_port_free(defaults.LOOPBACK, settings.alertmanager_port, "Alertmanager (--alertmanager-port)")


def _wants_alert_delivery(settings: Settings) -> str | None:
    for flag, given in (
        ("--alert-webhook", bool(settings.alert_webhook)),
        ("--heartbeat-url", settings.heartbeat_url is not None),
        ("--alertmanager-config", settings.alertmanager_config is not None),
    ):
        if given:
            return flag
    return None


def check_alerting(settings: Settings) -> None:
    """Everything about alerting that can be judged before anything starts."""
    check_objectives(settings)
    check_extra_rules(settings, find_tool("promtool"))
    if settings.alertmanager_config is not None:
        check_config(settings.alertmanager_config, find_amtool())


def _announce_receivers(settings: Settings, plan: StackPlan) -> None:
    if not has_receiver(settings):
        log.info(
            "no alert receiver configured: alerts show in Alertmanager (%s) and Grafana only; "
            "pass --alert-webhook URL or --alertmanager-config FILE to have them reach a person",
            plan.urls.get("alertmanager", "not running"),
        )
    if settings.heartbeat_url is None:
        log.info("no --heartbeat-url: nothing outside this host notices if alerting itself stops")


def _check_prometheus_access(settings: Settings, mode: str) -> None:
    beyond_loopback = not is_loopback_host(settings.prometheus_host)
    if mode != "native" and (beyond_loopback or settings.prometheus_web_config is not None):
        flag = "--prometheus-web-config" if settings.prometheus_web_config is not None else "--prometheus-host"
        raise UsageError(f"{flag} applies to --stack native only; compose's Prometheus listens on 127.0.0.1")
    if beyond_loopback and settings.prometheus_web_config is None:
        raise UsageError(
            f"--prometheus-host {settings.prometheus_host} binds Prometheus beyond loopback, which needs "
            "--prometheus-web-config (TLS and basic auth, in Prometheus' --web.config.file format)"
        )


def _remote_write_options(settings: Settings) -> str | None:
    """How the user asked for remote write, for messages; None when they did not."""
    if settings.remote_write_config is not None:
        return f"--remote-write-config {settings.remote_write_config}"
    return "--remote-write" if settings.remote_write else None


def plan_stack(settings: Settings, layout: StateLayout, access: StackAccess = OPEN) -> StackPlan:
    check_alerting(settings)
    remote = plan_remote_write(settings)
    remote_options = _remote_write_options(settings)
    mode = resolve_mode(settings.stack)
    _check_prometheus_access(settings, mode)
    if mode == "none":
        wanted = _wants_alert_delivery(settings)
        if wanted:
            raise UsageError(f"{wanted} needs Prometheus and Alertmanager, but the stack is none (see --stack)")
        if remote_options:
            flag = remote_options.split()[0]
            raise UsageError(f"{flag} needs the local Prometheus, but the stack is none (see --stack)")
        return StackPlan("none")
    if mode == "docker":
        compose = compose_file()
        if compose is None:
            raise PreflightError(
                "--stack docker needs deploy/docker-compose.yaml (a source checkout, or an installed wheel's copy), "
                "or SWM_COMPOSE_FILE pointing at it"
            )
        if not docker_engine_answers():
            raise PreflightError("--stack docker: no Docker engine answers `docker info`")
        _check_ports(settings, grafana=True, alertmanager=True)
        write_rules(settings, layout)
        write_dashboards(settings, layout)
        write_config(settings, layout, for_container=True)
        compose_config = write_compose_prometheus_config(layout, access, remote)
        if remote_options:
            check_prometheus_config(compose_config, remote_options)
        plan = StackPlan("docker", credentials=ensure_admin_password(layout.root))
        password = plan.credentials.password
        plan.children.append(docker_stack_child(settings, layout, compose, password))
        plan.alertmanager = alertmanager_address(settings)
        plan.urls = {
            "prometheus": prometheus_url(settings),
            "alertmanager": alertmanager_url(settings),
            "grafana": grafana_url(settings),
        }
        plan.announcements["stack"] = [
            f"Prometheus ready at {plan.urls['prometheus']} (docker)",
            f"Alertmanager ready at {plan.urls['alertmanager']} (docker)",
            f"Grafana ready at {plan.urls['grafana']} (docker); login: {describe(plan.credentials)}",
        ]
        _announce_receivers(settings, plan)
        if not settings.keep_stack:
            plan.on_shutdown.append(lambda: compose_down(settings, layout, compose, password))
        return plan

    prometheus = find_prometheus()
    if prometheus is None:
        raise PreflightError(
            "--stack native: no prometheus binary beside this Python or on PATH "
            "(apt-get install prometheus, or scripts/setup.sh)"
        )
    grafana = find_grafana()
    alertmanager = find_alertmanager()
    if alertmanager is None and _wants_alert_delivery(settings):
        raise PreflightError(
            f"{_wants_alert_delivery(settings)} needs Alertmanager: no alertmanager binary beside this Python "
            "or on PATH (apt-get install prometheus-alertmanager, or scripts/setup.sh)"
        )
    _check_ports(settings, grafana=grafana is not None, alertmanager=alertmanager is not None)
    plan = StackPlan("native")
    if alertmanager is not None:
        check_alertmanager(alertmanager)
        write_config(settings, layout)
        plan.alertmanager = alertmanager_address(settings)
    native_config = write_native_config(settings, layout, access, remote)
    if remote_options:
        check_prometheus_config(native_config, remote_options)
    dashboards = write_dashboards(settings, layout)
    plan.children.append(prometheus_child(settings, layout, prometheus, access, remote))
    plan.urls["prometheus"] = prometheus_url(settings, access)
    plan.announcements["prometheus"] = [f"Prometheus ready at {plan.urls['prometheus']}"]
    if alertmanager is None:
        log.warning(
            "no alertmanager binary: alerts are evaluated but not delivered "
            "(apt-get install prometheus-alertmanager, or scripts/setup.sh)"
        )
    else:
        plan.children.append(alertmanager_child(settings, layout, alertmanager))
        plan.urls["alertmanager"] = alertmanager_url(settings)
        plan.announcements["alertmanager"] = [f"Alertmanager ready at {plan.urls['alertmanager']}"]
        _announce_receivers(settings, plan)
    if grafana is None:
        log.info(
            "no grafana binary on PATH: running Prometheus only (the dashboards, with this run's objectives, are "
            "in %s for a Grafana of your own; `--stack docker` runs Grafana in a container)",
            dashboards,
        )
    else:
        plan.credentials = ensure_admin_password(layout.root)
        plan.children.append(grafana_child(settings, layout, grafana, plan.credentials.path, access))
        plan.urls["grafana"] = grafana_url(settings)
        plan.announcements["grafana"] = [
            f"Grafana ready at {plan.urls['grafana']}; login: {describe(plan.credentials)}"
        ]
    return plan
