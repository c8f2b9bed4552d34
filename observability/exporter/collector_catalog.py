"""The exporter's collectors by name, as data: what --collector.NAME and --no-collector.NAME accept, what
--help and docs/exporter.md list. build.py maps each name to the code that builds it.

Plain data on purpose: the launcher's options table reads it to check --no-exporter-collector NAME, and
must not import pynvml or prometheus_client to do so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class CollectorEntry:
    name: str
    help: str  # one line, for --help
    enabled_by_default: bool = True


# In the order they are built and their swm_exporter_collector_* rows appear (the golden files pin it).
CATALOG: tuple[CollectorEntry, ...] = (
    CollectorEntry("nvml", "NVML and driver status: swm_nvml_up, swm_gpu_count, swm_gpu_driver_info"),
    CollectorEntry("gpu", "per-GPU DCGM_FI_DEV_* fields, energy in joules, clock-event reasons, lost GPUs, NVLink"),
    CollectorEntry("gpu_processes", "GPU memory per process, vLLM's tree versus strangers, the GPUs vLLM uses"),
    CollectorEntry("gpm", "GPM profiling (DCGM_FI_PROF_*; Hopper and newer)"),
    CollectorEntry("xid", "XID error events, counted by an NVML event thread"),
    CollectorEntry("host", "host CPU, memory, swap, load, the state dir's disk, network"),
    CollectorEntry("supervisor", "the launcher's children and vLLM's progress, from supervisor.json"),
)

NAMES: tuple[str, ...] = tuple(entry.name for entry in CATALOG)


def enabled_collectors(switches: Iterable[tuple[str, bool]] = ()) -> tuple[str, ...]:
    """The names to build, in catalog order: each its default unless switched, the last switch winning."""
    chosen = {entry.name: entry.enabled_by_default for entry in CATALOG}
    for name, enabled in switches:
        if name not in chosen:
            raise ValueError(f"no collector named {name!r}; collectors: {', '.join(NAMES)}")
        chosen[name] = enabled
    return tuple(name for name in NAMES if chosen[name])
