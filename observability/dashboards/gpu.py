"""Dashboard b: GPUs. Built on dcgm-exporter's metric names, so it reads dcgm-exporter data too;
panels on swm_* metrics (per-process memory, XID counts) need the serve-with-monitoring exporter."""

from __future__ import annotations

from typing import Any

from observability.dashboards import queries as q
from observability.dashboards.grafana_model import Panel, Row, Variable, dashboard

VARIABLES = (
    q.HOST_VARIABLE,
    # The exporter's (and dcgm-exporter's) own label: the same name as `host` where hosts push theirs.
    Variable("hostname", "GPU host", f"label_values(DCGM_FI_DEV_GPU_UTIL{{{q.HOST}}}, hostname)"),
    Variable("gpu", "GPU", f'label_values(DCGM_FI_DEV_GPU_UTIL{{{q.HOST}, hostname=~"$hostname"}}, gpu)'),
)

ROWS = (
    Row(
        "Utilization and memory: $host",
        (
            Panel("GPU utilization", q.GPU_UTIL, unit="percent", min=0, max=100),
            Panel("Memory copy utilization", q.GPU_MEM_COPY_UTIL, unit="percent", min=0, max=100),
            Panel("Framebuffer", q.GPU_FB_USED, unit="decmbytes"),
            Panel(
                "GPU memory: vLLM and everyone else",
                q.GPU_MEMORY_BY_OWNER,
                unit="bytes",
                description="Compute processes' GPU memory, split by whether they belong to the supervised vLLM.",
            ),
            Panel("GPU memory per process", q.GPU_PROCESS_MEMORY, unit="bytes", width=24),
            Panel("SM, tensor and DRAM activity (GPM)", q.GPU_PROFILING, unit="percentunit", min=0, max=1),
            Panel("Encoder and decoder", q.GPU_CODEC, unit="percent"),
        ),
        repeat=q.HOST_VARIABLE.name,  # eight GPUs on each of many hosts are one unreadable chart otherwise
    ),
    Row(
        "Power, heat and clocks",
        (
            Panel("Power", q.GPU_POWER, unit="watt"),
            Panel("Energy draw", q.GPU_ENERGY_RATE, unit="watt", description="From the energy counter (mJ)."),
            Panel("Temperature", q.GPU_TEMPERATURE, unit="celsius"),
            Panel("Clocks", q.GPU_CLOCKS, unit="hertz", options={}),
            Panel(
                "Clock slowdown reasons",
                q.GPU_THROTTLE_REASONS,
                description="1 while a reason holds the clocks down (decoded from the NVML bitmask).",
            ),
            Panel(
                "Time throttled",
                q.GPU_VIOLATIONS,
                unit="percentunit",
                description="Share of time the power or thermal limit throttled the GPU.",
            ),
        ),
    ),
    Row(
        "Errors",
        (
            Panel("XID errors (last hour)", q.GPU_XID_EVENTS, width=8),
            Panel("Seconds since each XID", q.GPU_XID_LAST_SEEN, "table", "s", width=16),
            Panel("ECC errors (volatile)", q.GPU_ECC, width=8),
            Panel("Remapped rows", q.GPU_REMAPPED_ROWS, width=8),
            Panel("PCIe replays", q.GPU_PCIE_REPLAYS, unit="ops", width=8),
            Panel("NVLink errors", q.GPU_NVLINK_ERRORS, unit="ops"),
        ),
    ),
)


def build() -> dict[str, Any]:
    return dashboard(
        "swm-gpu", "GPUs", "Per-GPU and per-process GPU metrics (dcgm-exporter names).", VARIABLES, ROWS, tags=("gpu",)
    )
