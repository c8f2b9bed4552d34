"""GPM utilization (SM active, tensor active, DRAM bandwidth) on GPUs that support it (Hopper and newer).

GPM reports the activity between two samples, so each collection keeps its sample for the next one.
Values are fractions 0..1 under DCGM's profiling names.
"""

from __future__ import annotations

import contextlib
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

    def _take_sample(self, index: int, handle: Any) -> Any | None:
        """A filled sample, or None; a sample allocated but not filled is freed, never leaked."""
        nvml = self._session.nvml
        lib = nvml.lib
        sample = nvml.call(index, lib.nvmlGpmSampleAlloc)
        if sample is None:
            return None
        try:
            filled = nvml.call(index, lib.nvmlGpmSampleGet, handle, sample)
        except BaseException:
            self._free(sample)
            raise
        if filled is None:
            self._free(sample)
            return None
        return sample

    def _free(self, sample: Any) -> None:
        lib = self._session.nvml.lib
        with contextlib.suppress(lib.NVMLError):
            lib.nvmlGpmSampleFree(sample)

    def _forget(self, uuid: str) -> None:
        previous = self._previous.pop(uuid, None)
        if previous is not None:
            self._free(previous)

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
                sample = self._take_sample(gpu.identity.index, gpu.handle)
            except GpuLost:
                self._session.mark_lost(gpu.identity.index)
                continue
            except lib.NVMLError:
                self._unsupported.add(uuid)  # GPM misbehaves on this GPU: stop asking
                self._forget(uuid)
                continue
            if sample is None:
                self._unsupported.add(uuid)
                self._forget(uuid)
                continue
            previous = self._previous.get(uuid)
            self._previous[uuid] = sample
            if previous is None:
                continue
            try:
                values = self._metrics_between(previous, sample)
            except lib.NVMLError:
                values = {}
            finally:
                self._free(previous)
            labels = gpu_label_values(gpu.identity, self._hostname)
            for name, value in values.items():
                rows[name].append((labels, value))
        return [gauge(name, doc, GPU_LABELS, rows[name]) for _, name, doc in METRICS if rows[name]]
