"""Composes the exporter: which collectors run, on which session, for which host."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from observability.exporter.collection import SnapshotRegistry
from observability.exporter.collector import Collector
from observability.exporter.gpm_collector import GpmCollector
from observability.exporter.gpu_collector import GpuCollector
from observability.exporter.gpu_process_collector import GpuProcessCollector
from observability.exporter.host_collector import HostCollector
from observability.exporter.nvml_session import NvmlSession
from observability.exporter.nvml_status_collector import NvmlStatusCollector
from observability.exporter.supervisor_collector import SupervisorCollector
from observability.exporter.vllm_tree import SupervisorView
from observability.exporter.xid_collector import XidCollector


def build_registry(
    hostname: str,
    interval_s: float,
    state_file: Path | None = None,
    disk_path: Path | None = None,
    nvml_library: ModuleType | None = None,
) -> SnapshotRegistry:
    session = NvmlSession(nvml_library)
    view = SupervisorView(state_file)
    collectors: list[Collector] = [
        NvmlStatusCollector(session, hostname),
        GpuCollector(session, hostname),
        GpuProcessCollector(session, view, hostname),
        GpmCollector(session, hostname),
        XidCollector(session, hostname),
        HostCollector(hostname, disk_path),
        SupervisorCollector(view),
    ]
    return SnapshotRegistry(collectors, interval_s)
