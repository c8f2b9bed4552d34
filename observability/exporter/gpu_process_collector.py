"""GPU memory per compute process, with whether the process belongs to the supervised vLLM.

dcgm-exporter has no per-process memory; it is the first thing its users ask for. In a container
the PIDs NVML reports are the host's, so matching them needs the host PID namespace.
"""

from __future__ import annotations

import psutil
from prometheus_client.core import Metric

from observability.exporter.collector import gauge
from observability.exporter.labels import GPU_LABELS, gpu_label_values
from observability.exporter.nvml_api import GpuLost
from observability.exporter.nvml_session import NvmlSession
from observability.exporter.vllm_tree import SupervisorView

PROCESS_LABELS = (*GPU_LABELS, "pid", "process_name", "in_vllm_tree")


def _process_name(pid: int) -> str:
    try:
        process = psutil.Process(pid)
        cmdline = process.cmdline()
        # vLLM renames its engine processes (VLLM::EngineCore); the cmdline shows it, name() may not.
        if cmdline and cmdline[0].startswith("VLLM::"):
            return cmdline[0].split()[0]
        return process.name()
    except psutil.Error:
        return "unknown"


class GpuProcessCollector:
    name = "gpu_processes"

    def __init__(self, session: NvmlSession, supervisor: SupervisorView, hostname: str) -> None:
        self._session = session
        self._supervisor = supervisor
        self._hostname = hostname

    def collect(self) -> list[Metric]:
        gpus = self._session.gpus()
        if not gpus:
            return []
        vllm_pids = self._supervisor.tree_pids()
        lib = self._session.nvml.lib
        rows: list[tuple[list[str], float]] = []
        totals: dict[tuple[str, ...], float] = {}
        used_by_vllm: list[tuple[list[str], float]] = []
        for gpu in gpus:
            try:
                processes = self._session.nvml.compute_processes(gpu.identity.index, gpu.handle)
            except GpuLost:
                self._session.mark_lost(gpu.identity.index)
                continue
            except lib.NVMLError:
                continue  # this GPU's processes are unknown this time; the other GPUs still count
            labels = gpu_label_values(gpu.identity, self._hostname)
            # A context counts even where NVML cannot tell its memory (MIG): the GPU is vLLM's all the same.
            vllm_here = any(process.pid in vllm_pids for process in processes or [])
            used_by_vllm.append((labels, 1.0 if vllm_here else 0.0))
            for process in processes or []:
                used = getattr(process, "usedGpuMemory", None)
                if used is None:
                    continue  # NVML cannot tell (no permission, or a MIG slice without accounting)
                owner = "true" if process.pid in vllm_pids else "false"
                rows.append(([*labels, str(process.pid), _process_name(process.pid), owner], float(used)))
                key = (*labels, owner)
                totals[key] = totals.get(key, 0.0) + float(used)
        return [
            gauge("swm_gpu_process_memory_used_bytes", "GPU memory used by one compute process.", PROCESS_LABELS, rows),
            gauge(
                "swm_gpu_memory_used_by_owner_bytes",
                "GPU memory used by compute processes, split into the vLLM tree and everything else.",
                (*GPU_LABELS, "in_vllm_tree"),
                [(list(key), value) for key, value in totals.items()],
            ),
            gauge(
                "swm_gpu_used_by_vllm",
                "1 while a process of the supervised vLLM's tree has a compute context on this GPU, else 0.",
                GPU_LABELS,
                used_by_vllm,
            ),
        ]
