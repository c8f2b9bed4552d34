"""The host beside the GPUs, through psutil: CPU, memory, the disk holding the state dir, network."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
from prometheus_client.core import Metric

from observability.exporter.collector import counter, gauge


class HostCollector:
    name = "host"

    def __init__(self, hostname: str, disk_path: Path | None = None) -> None:
        self._hostname = hostname
        self._disk_path = disk_path or Path("/")
        psutil.cpu_percent(interval=None)  # primes the counter: the first real reading covers one interval

    def collect(self) -> list[Metric]:
        host = [self._hostname]
        times = psutil.cpu_times()._asdict()
        memory = psutil.virtual_memory()
        swap = psutil.swap_memory()
        path = self._disk_path if self._disk_path.exists() else Path("/")
        disk = psutil.disk_usage(str(path))
        load = os.getloadavg()
        network = psutil.net_io_counters(pernic=True)
        return [
            counter(
                "swm_host_cpu_seconds",
                "CPU time spent in each mode, all CPUs.",
                ("hostname", "mode"),
                [([*host, mode], seconds) for mode, seconds in times.items()],
            ),
            gauge(
                "swm_host_cpu_utilization_ratio",
                "Share of all CPUs busy since the last collection.",
                ("hostname",),
                [(host, psutil.cpu_percent(interval=None) / 100.0)],
            ),
            gauge("swm_host_cpus", "Logical CPUs.", ("hostname",), [(host, float(psutil.cpu_count() or 0))]),
            gauge(
                "swm_host_load_average",
                "System load average.",
                ("hostname", "period"),
                [([*host, period], value) for period, value in zip(("1m", "5m", "15m"), load, strict=True)],
            ),
            gauge("swm_host_memory_total_bytes", "Physical memory.", ("hostname",), [(host, float(memory.total))]),
            gauge(
                "swm_host_memory_available_bytes",
                "Memory available without swapping.",
                ("hostname",),
                [(host, float(memory.available))],
            ),
            gauge("swm_host_swap_used_bytes", "Swap in use.", ("hostname",), [(host, float(swap.used))]),
            gauge(
                "swm_host_filesystem_size_bytes",
                "Size of the filesystem holding the state dir.",
                ("hostname", "path"),
                [([*host, str(path)], float(disk.total))],
            ),
            gauge(
                "swm_host_filesystem_free_bytes",
                "Free space on the filesystem holding the state dir.",
                ("hostname", "path"),
                [([*host, str(path)], float(disk.free))],
            ),
            counter(
                "swm_host_network_receive_bytes",
                "Bytes received per interface.",
                ("hostname", "device"),
                [([*host, name], float(io.bytes_recv)) for name, io in network.items()],
            ),
            counter(
                "swm_host_network_transmit_bytes",
                "Bytes sent per interface.",
                ("hostname", "device"),
                [([*host, name], float(io.bytes_sent)) for name, io in network.items()],
            ),
        ]
