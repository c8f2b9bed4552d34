"""file_sd target lists: how every Prometheus (ours, a compose one, a central one) finds this host's targets."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from launcher.addresses import WILDCARD_HOSTS, host_port, is_loopback_host
from launcher.file_writes import write_for_container
from observability.exporter.labels import default_hostname


def _write_readable(path: Path, text: str) -> None:
    """Atomically, and readable by everyone: Prometheus' container user must read it even under UMask=0077."""
    write_for_container(path, text)  # Prometheus re-reads file_sd files on change; never half of one


def write_target_file(path: Path, addresses: list[str], labels: dict[str, str] | None = None) -> None:
    document = [{"targets": addresses, "labels": labels or {}}] if addresses else []
    _write_readable(path, json.dumps(document, indent=1) + "\n")


def vllm_labels() -> dict[str, str]:
    """vLLM's target carries the host's name as the exporter labels its GPUs (`hostname`): the one label the
    efficiency rules join tokens and GPU energy on (observability/efficiency_rules.py). vLLM's own series have
    no such label; the exporter's target gets none, as its GPU series carry their own."""
    return {"hostname": default_hostname()}


def write_local_targets(
    directory: Path, vllm: str, exporter: str | None, prometheus: str | None, alertmanager: str | None = None
) -> None:
    write_target_file(directory / "vllm.json", [vllm], vllm_labels())
    write_target_file(directory / "exporter.json", [exporter] if exporter else [])
    write_target_file(directory / "prometheus.json", [prometheus] if prometheus else [])
    write_target_file(directory / "alertmanager.json", [alertmanager] if alertmanager else [])


def advertised(bound_host: str, port: int, advertise_address: str | None) -> str:
    """host:port as a central Prometheus should dial it."""
    if advertise_address:
        host = advertise_address
    elif bound_host in WILDCARD_HOSTS:
        host = socket.getfqdn()
    else:
        host = bound_host
    return host_port(host, port)


def fleet_target_groups(vllm: str, exporter: str | None, exporter_scheme: str = "http") -> list[dict[str, object]]:
    """One file_sd / http_sd document for this host. The job labels win over a central job_name, so
    the shipped alerts (up{job="vllm"}, up{job="swm-exporter"}) work unchanged; an exporter behind TLS
    says so with __scheme__, which a central Prometheus applies to that target alone."""
    groups: list[dict[str, object]] = [{"targets": [vllm], "labels": {"job": "vllm", **vllm_labels()}}]
    if exporter:
        labels = {"job": "swm-exporter", **({"__scheme__": exporter_scheme} if exporter_scheme != "http" else {})}
        groups.append({"targets": [exporter], "labels": labels})
    return groups


def write_fleet_targets(path: Path, groups: list[dict[str, object]]) -> None:
    _write_readable(path, json.dumps(groups, indent=1) + "\n")


def is_loopback(address: str) -> bool:
    return is_loopback_host(address.rsplit(":", 1)[0])
