"""The real exporter HTTP server over the NVML HARDWARE STAND-IN: GPU metrics where no GPU exists.

    python -m tests.support.standins.standin_gpu_exporter PORT [--gpus N] [--interval S] [--xid-after S]

The tests add it as an extra scrape target so the GPU dashboard's queries have data to find; the
benchmarks use it to measure the exporter at 1, 8 and 64 simulated GPUs. It is not a GPU.
"""

from __future__ import annotations

import argparse
import threading
from dataclasses import replace

from observability.exporter.build import build_registry
from observability.exporter.server import serve
from tests.support.standins.nvml_hardware_standin import NvmlHardwareStandIn, two_different_gpus


def standin_with(gpu_count: int) -> NvmlHardwareStandIn:
    """Two different GPUs for 2; otherwise N copies of the H100, each with two compute processes."""
    if gpu_count == 2:
        gpus = two_different_gpus()
        for index, gpu in enumerate(gpus):
            gpu.processes = [(1000 + index, 2**30), (2000 + index, 2**29)]
        return NvmlHardwareStandIn(gpus)
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
    options = argparse.ArgumentParser()
    options.add_argument("port", type=int)
    options.add_argument("--gpus", type=int, default=2)
    options.add_argument("--interval", type=float, default=5.0)
    options.add_argument("--xid-after", type=float, default=None, help="send XID 79 on GPU 0 after this many seconds")
    args = options.parse_args()
    standin = standin_with(args.gpus)
    if args.xid_after is not None:
        threading.Timer(args.xid_after, lambda: standin.xid_events.put((0, 79))).start()
    registry = build_registry("standin-gpu-host", args.interval, None, None, nvml_library=standin.library())
    registry.start()
    serve(registry, "127.0.0.1", args.port)


if __name__ == "__main__":
    main()
