"""The real exporter HTTP server over the NVML HARDWARE STAND-IN: GPU metrics where no GPU exists.

    python -m tests.support.standins.standin_gpu_exporter PORT [--gpus N] [--interval S] [--xid-after S]
        [--power-w W] [--state-file supervisor.json --vllm-on-gpus N]

The tests add it as an extra scrape target so the GPU dashboard's queries have data to find; the
benchmarks use it to measure the exporter at 1, 8 and 64 simulated GPUs. It is not a GPU.

With --state-file (a launcher's supervisor.json) and --vllm-on-gpus N, the stand-in shows the real vLLM's
process tree on its first N GPUs, so swm_gpu_used_by_vllm is 1 there: a CPU build of vLLM then has
"GPUs" whose energy rises at --power-w each. The launcher's own exporter reports the supervisor metrics,
so this one leaves them out.
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import replace
from pathlib import Path

from observability.exporter.build import build_registry
from observability.exporter.collector_catalog import NAMES
from observability.exporter.server import serve
from observability.exporter.vllm_tree import SupervisorView
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


def place_vllm(standin: NvmlHardwareStandIn, view: SupervisorView, gpu_count: int) -> None:
    """vLLM's tree, as the state file names it now, becomes the compute processes of the first GPUs."""
    pids = sorted(view.tree_pids())
    for gpu in standin.gpus[:gpu_count]:
        gpu.processes = [(pid, 2**30) for pid in pids]


def follow_vllm(standin: NvmlHardwareStandIn, state_file: Path, gpu_count: int, interval_s: float) -> None:
    view = SupervisorView(state_file)
    while True:  # vLLM restarts under new pids; a daemon thread, it ends with the process
        place_vllm(standin, view, gpu_count)
        time.sleep(interval_s / 2)


def main() -> None:
    options = argparse.ArgumentParser()
    options.add_argument("port", type=int)
    options.add_argument("--gpus", type=int, default=2)
    options.add_argument("--interval", type=float, default=5.0)
    options.add_argument("--xid-after", type=float, default=None, help="send XID 79 on GPU 0 after this many seconds")
    options.add_argument("--power-w", type=float, default=None, help="every GPU's power draw (default 250 W)")
    options.add_argument("--state-file", type=Path, default=None, help="a launcher's supervisor.json")
    options.add_argument("--vllm-on-gpus", type=int, default=0, help="show vLLM's tree on the first N GPUs")
    args = options.parse_args()
    standin = standin_with(args.gpus)
    if args.power_w is not None:
        for index in range(len(standin.gpus)):
            standin.set_power(index, round(args.power_w * 1000))
    if args.xid_after is not None:
        threading.Timer(args.xid_after, lambda: standin.xid_events.put((0, 79))).start()
    collectors = None
    if args.state_file is not None:
        collectors = [name for name in NAMES if name != "supervisor"]
        if args.vllm_on_gpus:
            threading.Thread(
                target=follow_vllm,
                args=(standin, args.state_file, args.vllm_on_gpus, args.interval),
                daemon=True,
            ).start()
    registry = build_registry(
        "standin-gpu-host", args.interval, args.state_file, None, nvml_library=standin.library(), collectors=collectors
    )
    registry.start()
    serve(registry, "127.0.0.1", args.port)


if __name__ == "__main__":
    main()
