"""Label names shared by every GPU metric. They are dcgm-exporter's, so its dashboards work on ours."""

from __future__ import annotations

import os
import socket

from observability.exporter.nvml_api import GpuIdentity

GPU_LABELS = ("gpu", "UUID", "device", "modelName", "pci_bus_id", "hostname")


def default_hostname() -> str:
    # In Kubernetes the node name says more than the pod's hostname.
    return os.environ.get("NODE_NAME") or socket.gethostname()


def gpu_label_values(identity: GpuIdentity, hostname: str) -> list[str]:
    return [str(identity.index), identity.uuid, identity.device, identity.name, identity.pci_bus_id, hostname]
