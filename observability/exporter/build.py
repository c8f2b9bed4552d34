"""Composes the exporter: which collectors run, on which session, for which host."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from observability.exporter.collection import SnapshotRegistry
from observability.exporter.collector import Collector
from observability.exporter.collector_catalog import NAMES, enabled_collectors
from observability.exporter.gpm_collector import GpmCollector
from observability.exporter.gpu_collector import GpuCollector
from observability.exporter.gpu_process_collector import GpuProcessCollector
from observability.exporter.host_collector import HostCollector
from observability.exporter.nvml_session import NvmlSession
from observability.exporter.nvml_status_collector import NvmlStatusCollector
from observability.exporter.supervisor_collector import SupervisorCollector
from observability.exporter.vllm_tree import SupervisorView
from observability.exporter.xid_collector import XidCollector


@dataclass(frozen=True)
class Sources:
    """What the collectors read from, shared: one NVML session, one view of the launcher's state."""

    session: NvmlSession
    view: SupervisorView
    hostname: str
    disk_path: Path | None


# Each name of the catalog (collector_catalog.py), and how to build that collector.
FACTORIES: dict[str, Callable[[Sources], Collector]] = {
    "nvml": lambda sources: NvmlStatusCollector(sources.session, sources.hostname),
    "gpu": lambda sources: GpuCollector(sources.session, sources.hostname),
    "gpu_processes": lambda sources: GpuProcessCollector(sources.session, sources.view, sources.hostname),
    "gpm": lambda sources: GpmCollector(sources.session, sources.hostname),
    "xid": lambda sources: XidCollector(sources.session, sources.hostname),
    "host": lambda sources: HostCollector(sources.hostname, sources.disk_path),
    "supervisor": lambda sources: SupervisorCollector(sources.view),
}


def build_registry(
    hostname: str,
    interval_s: float,
    state_file: Path | None = None,
    disk_path: Path | None = None,
    nvml_library: ModuleType | None = None,
    collectors: Collection[str] | None = None,
) -> SnapshotRegistry:
    """`collectors`: the names to build (default: the catalog's defaults). One left out is not built at
    all, so it starts no thread, registers for no NVML event and exports nothing, not even a zero."""
    names = enabled_collectors() if collectors is None else tuple(collectors)
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        raise ValueError(f"no collector named {', '.join(unknown)}; collectors: {', '.join(NAMES)}")
    sources = Sources(NvmlSession(nvml_library), SupervisorView(state_file), hostname, disk_path)
    return SnapshotRegistry([FACTORIES[name](sources) for name in NAMES if name in names], interval_s)
