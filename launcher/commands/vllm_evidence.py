"""Wires what the launcher takes evidence of its vLLM with: the incident recorder (bundles under
STATE_DIR/incidents) and the GPU health check asked before each restart, both reading the exporter."""

from __future__ import annotations

import os
import platform

from launcher import defaults
from launcher.incidents.capture import EvidenceSources, IncidentRecorder, http_text, secrets_in
from launcher.incidents.gpu_health import GpuHealth
from launcher.incidents.redaction import Redactor
from launcher.incidents.store import IncidentStore
from launcher.settings.settings import Settings
from launcher.stack.exporter_child import exporter_url
from launcher.stack.secured_endpoint import StackAccess
from launcher.state_layout import StateLayout
from launcher.vllm_server.command import VllmInvocation

_GPU_HEALTH_TIMEOUT_S = 2.0


def incident_store(layout: StateLayout, keep: int = defaults.INCIDENT_KEEP) -> IncidentStore:
    return IncidentStore(layout.incidents, keep, defaults.INCIDENT_MAX_BYTES)


def evidence_sources(
    settings: Settings, layout: StateLayout, invocation: VllmInvocation, access: StackAccess
) -> EvidenceSources:
    endpoint = access.exporter
    secrets = (
        invocation.target.api_key,
        endpoint.password,
        access.prometheus.password,
        *secrets_in(dict(os.environ)),
        *secrets_in(invocation.env),
    )
    return EvidenceSources(
        log_path=layout.log_file("vllm"),
        argv=invocation.argv,
        versions={"vllm": invocation.vllm_version, "python": platform.python_version()},
        secrets=tuple(secret for secret in secrets if secret),
        exporter_url=None if settings.no_exporter else exporter_url(settings, endpoint) + "/metrics",
        exporter_authorization=endpoint.authorization(),
    )


def recorder(settings: Settings, sources: EvidenceSources, layout: StateLayout) -> IncidentRecorder | None:
    if settings.incident_keep == 0:
        return None
    return IncidentRecorder(incident_store(layout, settings.incident_keep), sources, defaults.INCIDENT_CAPTURE_BUDGET_S)


def gpu_health(sources: EvidenceSources) -> GpuHealth | None:
    url = sources.exporter_url
    if url is None:
        return None
    return GpuHealth(lambda: http_text(url, sources.exporter_authorization, _GPU_HEALTH_TIMEOUT_S))


def redacted_command(sources: EvidenceSources) -> str:
    return " ".join(Redactor(sources.secrets).redact_argv(sources.argv))
