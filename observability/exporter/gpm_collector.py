"""GPM utilization (SM active, tensor active, DRAM bandwidth) on GPUs that support it (Hopper and newer).

GPM reports the activity between two samples, so each collection keeps its sample for the next one.
Values are fractions 0..1 under DCGM's profiling names.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.core import Metric

from observability.exporter.collector import gauge
from observability.exporter.labels import GPU_LABELS, gpu_label_values
from observability.exporter.nvml_api import GpuLost
from observability.exporter.nvml_session import NvmlSession

METRICS = (
    ("NVML_GPM_METRIC_SM_UTIL", "DCGM_FI_PROF_SM_ACTIVE", "Fraction of cycles an SM had at least one warp."),
    (
        "NVML_GPM_METRIC_ANY_TENSOR_UTIL",
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        "Fraction of cycles a tensor pipe was busy.",
    ),
    ("NVML_GPM_METRIC_DRAM_BW_UTIL", "DCGM_FI_PROF_DRAM_ACTIVE", "Fraction of peak DRAM bandwidth used."),
)


class GpmCollector:
    name = "gpm"

    def __init__(self, session: NvmlSession, hostname: str) -> None:
        self._session = session
        self._hostname = hostname
        self._previous: dict[str, Any] = {}
        self._unsupported: set[str] = set()

    def _supported(self, index: int, handle: Any, uuid: str) -> bool:
        if uuid in self._unsupported:
            return False
        lib = self._session.nvml.lib
        query = getattr(lib, "nvmlGpmQueryDeviceSupport", None)
        support = self._session.nvml.call(index, query, handle) if query else None
        if support is None or not support.isSupportedDevice:
            self._unsupported.add(uuid)
            return False
        return True

    def _metrics_between(self, older: Any, newer: Any) -> dict[str, float]:
        lib = self._session.nvml.lib
        request = lib.c_nvmlGpmMetricsGet_t()
        request.version = lib.NVML_GPM_METRICS_GET_VERSION
        request.numMetrics = len(METRICS)
        request.sample1 = older
        request.sample2 = newer
        for position, (metric_id, _, _) in enumerate(METRICS):
            request.metrics[position].metricId = getattr(lib, metric_id)
        lib.nvmlGpmMetricsGet(request)
        values = {}
        for position, (_, name, _) in enumerate(METRICS):
            metric = request.metrics[position]
            if metric.nvmlReturn == 0:
                values[name] = metric.value / 100.0
        return values

    def collect(self) -> list[Metric]:
        rows: dict[str, list[tuple[list[str], float]]] = {name: [] for _, name, _ in METRICS}
        lib = self._session.nvml.lib
        for gpu in self._session.gpus():
            uuid = gpu.identity.uuid
            try:
                if not self._supported(gpu.identity.index, gpu.handle, uuid):
                    continue
                nvml = self._session.nvml
                sample = nvml.call(gpu.identity.index, lib.nvmlGpmSampleAlloc)
                if sample is None or nvml.call(gpu.identity.index, lib.nvmlGpmSampleGet, gpu.handle, sample) is None:
                    self._unsupported.add(uuid)
                    continue
            except GpuLost:
                self._session.mark_lost(gpu.identity.index)
                continue
            except lib.NVMLError:
                self._unsupported.add(uuid)  # GPM misbehaves on this GPU: stop asking
                continue
            previous = self._previous.get(uuid)
            self._previous[uuid] = sample
            if previous is None:
                continue
            try:
                values = self._metrics_between(previous, sample)
            finally:
                lib.nvmlGpmSampleFree(previous)
            labels = gpu_label_values(gpu.identity, self._hostname)
            for name, value in values.items():
                rows[name].append((labels, value))
        return [gauge(name, doc, GPU_LABELS, rows[name]) for _, name, doc in METRICS if rows[name]]
