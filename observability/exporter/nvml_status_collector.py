"""Whether NVML answers, and the driver and CUDA versions behind it."""

from __future__ import annotations

from prometheus_client.core import Metric

from observability.exporter.collector import gauge
from observability.exporter.nvml_session import NvmlSession


class NvmlStatusCollector:
    name = "nvml"

    def __init__(self, session: NvmlSession, hostname: str) -> None:
        self._session = session
        self._hostname = hostname

    def collect(self) -> list[Metric]:
        nvml = self._session.ensure()
        families = [
            gauge(
                "swm_nvml_up",
                "1 when NVML answers; 0 on a host without a usable NVIDIA driver.",
                ("hostname",),
                [([self._hostname], 1.0 if nvml else 0.0)],
            )
        ]
        if nvml is not None:
            versions = nvml.driver_versions()
            families.append(
                gauge(
                    "swm_gpu_driver_info",
                    "The NVIDIA driver, CUDA driver API and NVML versions (value 1).",
                    ("hostname", "driver_version", "cuda_version", "nvml_version"),
                    [
                        (
                            [
                                self._hostname,
                                versions["driver_version"],
                                versions["cuda_version"],
                                versions["nvml_version"],
                            ],
                            1.0,
                        )
                    ],
                )
            )
            families.append(
                gauge(
                    "swm_gpu_count",
                    "GPUs NVML reports, lost ones included.",
                    ("hostname",),
                    [([self._hostname], float(nvml.device_count()))],
                )
            )
        return families
