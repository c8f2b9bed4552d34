"""file_sd target lists: how every Prometheus (ours, a compose one, a central one) finds this host's targets."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from launcher.addresses import WILDCARD_HOSTS, host_port


def _write_readable(path: Path, text: str) -> None:
    """Atomically, and readable by everyone: Prometheus' container user must read it even under UMask=0077."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o755)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    temporary.chmod(0o644)
    temporary.replace(path)  # Prometheus re-reads file_sd files on change; it must never see half of one


def write_target_file(path: Path, addresses: list[str], labels: dict[str, str] | None = None) -> None:
    document = [{"targets": addresses, "labels": labels or {}}] if addresses else []
    _write_readable(path, json.dumps(document, indent=1) + "\n")


def write_local_targets(
    directory: Path, vllm: str, exporter: str | None, prometheus: str | None, alertmanager: str | None = None
) -> None:
    write_target_file(directory / "vllm.json", [vllm])
    write_target_file(directory / "exporter.json", [exporter] if exporter else [])
    write_target_file(directory / "prometheus.json", [prometheus] if prometheus else [])
    write_target_file(directory / "alertmanager.json", [alertmanager] if alertmanager else [])


LOOPBACKS = ("127.0.0.1", "localhost", "::1")


def advertised(bound_host: str, port: int, advertise_address: str | None) -> str:
    """host:port as a central Prometheus should dial it."""
    if advertise_address:
        host = advertise_address
    elif bound_host in WILDCARD_HOSTS:
        host = socket.getfqdn()
    else:
        host = bound_host
    return host_port(host, port)


def fleet_target_groups(vllm: str, exporter: str | None) -> list[dict[str, object]]:
    """One file_sd / http_sd document for this host. The job labels win over a central job_name, so
    the shipped alerts (up{job="vllm"}, up{job="swm-exporter"}) work unchanged."""
    groups: list[dict[str, object]] = [{"targets": [vllm], "labels": {"job": "vllm"}}]
    if exporter:
        groups.append({"targets": [exporter], "labels": {"job": "swm-exporter"}})
    return groups


def write_fleet_targets(path: Path, groups: list[dict[str, object]]) -> None:
    _write_readable(path, json.dumps(groups, indent=1) + "\n")


def is_loopback(address: str) -> bool:
    return address.rsplit(":", 1)[0].strip("[]") in LOOPBACKS
