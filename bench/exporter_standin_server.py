"""The exporter's HTTP server over N stand-in GPUs (the NVML HARDWARE STAND-IN from tests/standins).

Run by bench/exporter_overhead.py in its own process, so its RSS and latency are the exporter's alone.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from observability.exporter.build import build_registry
from observability.exporter.server import serve
from tests.standins.nvml_hardware_standin import NvmlHardwareStandIn, two_different_gpus


def standin_with(gpu_count: int) -> NvmlHardwareStandIn:
    template = two_different_gpus()[0]
    gpus = [
        replace(
            template,
            uuid=f"GPU-{index:08d}-0000-0000-0000-000000000000",
            minor=index,
            pci_bus_id=f"00000000:{index:02X}:00.0",
            processes=[(1000 + index, 2**30), (2000 + index, 2**29)],
        )
        for index in range(gpu_count)
    ]
    return NvmlHardwareStandIn(gpus)


def main() -> None:
    gpu_count, port, interval = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    registry = build_registry("bench-host", interval, None, None, nvml_library=standin_with(gpu_count))
    registry.start()
    serve(registry, "127.0.0.1", port)


if __name__ == "__main__":
    main()
