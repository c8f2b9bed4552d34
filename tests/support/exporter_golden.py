"""The exporter's whole /metrics, pinned in a fixture file, as node_exporter pins its
collector/fixtures/e2e-output.txt: every family name, help text, type and label of two fixed hosts
(the NVML HARDWARE STAND-IN's two GPUs with a supervised vLLM, and a host without a driver), values
masked where they are the machine's (host readings, durations, timestamps). Regenerate after a
deliberate change, and review the diff:

    .venv/bin/python -m tests.support.exporter_golden --update
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

from launcher.states import ChildStatus, EngineReport, IncidentNote, SupervisorStatus
from launcher.supervision.status_file import write_status
from observability.exporter.build import build_registry
from observability.exporter.exposition import Exposition
from observability.slo_objectives import DEFAULT_OBJECTIVES
from tests.support.standins.nvml_hardware_standin import NvmlHardwareStandIn, two_different_gpus

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HOSTS = {"standin-gpu-host": "exporter-standin-gpu-host.txt", "no-gpu-host": "exporter-no-gpu-host.txt"}
MASK = "<volatile>"
# Families whose values are this machine's, or the clock's.
VOLATILE_VALUES = re.compile(
    r"^(swm_host_\w+|swm_exporter_collector_duration_seconds|swm_exporter_\w+_timestamp_seconds"
    r"|swm_gpu_xid_last_seen_timestamp_seconds|swm_supervisor_state_age_seconds|swm_vllm_last_\w+_timestamp_seconds"
    r"|swm_canary_last_timestamp_seconds|swm_last_incident_timestamp_seconds)$"
)
# Families whose very series are this machine's (its network devices, its state dir's path): one line each.
VOLATILE_SERIES = re.compile(r"^swm_host_(network_\w+|filesystem_\w+)$")


def _status(state_file: Path) -> None:
    now = time.time()
    engine = EngineReport(
        stall_timeout_s=120.0,
        checked_at=now,
        last_progress_at=now,
        last_token_at=now,
        running=2,
        waiting=1,
        missing_metrics=["vllm:renamed_in_a_new_version_total"],
        canary_interval_s=60.0,
        canaries_ok=3,
        canaries_failed=1,
        canary_last_at=now - 5,
        canary_last_latency_s=0.125,
        canary_last_outcome="ok",
    )
    incident = IncidentNote(now - 30, "stalled", "/var/lib/serve-with-monitoring/incidents/20261204T120000Z-stalled")
    children = [
        ChildStatus(
            "vllm",
            "healthy",
            True,
            None,
            1,
            -9,
            now - 60,
            now - 30,
            failures={"stalled": 1},
            engine=engine,
            incidents={"stalled": 1},
            last_incident=incident,
        ),
        ChildStatus("exporter", "healthy", False, None, 0, None, now - 60, now - 59),
    ]
    info = {"model_name": "tiny-llama", "stack": "native", **DEFAULT_OBJECTIVES.as_info()}
    write_status(state_file, SupervisorStatus(launcher_pid=1, updated_at=now, children=children, info=info))


def exposition(host: str) -> str:
    with tempfile.TemporaryDirectory() as directory:
        state_file = Path(directory) / "supervisor.json"
        if host == "standin-gpu-host":
            # A stopped clock: the energy counters stay at their starting values, so the fixture is fixed.
            standin = NvmlHardwareStandIn(two_different_gpus(), clock=lambda: 0.0)
            standin.gpus[0].processes = [(424242, 60 * 2**30), (434343, 2**30)]
        else:
            standin = NvmlHardwareStandIn([], driver_missing=True)
        _status(state_file)
        registry = build_registry(host, 3600.0, state_file, Path(directory), nvml_library=standin.library())
        try:
            for collection in registry.collections:
                collection.collect_once()
            if host == "standin-gpu-host":
                xid = next(c for c in registry.collections if c.collector.name == "xid").collector
                xid.record("GPU-11111111-aaaa-bbbb-cccc-000000000000", 79)
                for collection in registry.collections:
                    collection.collect_once()  # GPM needs two samples; XID's counts appear
            return Exposition(registry).body("", False)[0].decode()
        finally:
            registry.stop()
            standin.uninstall()


def masked(text: str) -> str:
    """Volatile values become <volatile>; volatile series collapse to one line per family."""
    lines: list[str] = []
    collapsed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("#"):
            lines.append(line)
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        family = re.sub(r"_(total|created)$", "", name)
        if VOLATILE_SERIES.match(family):
            if name not in collapsed:
                collapsed.add(name)
                labels = sorted(re.findall(r'(\w+)="', line))
                lines.append(f"{name}{{{','.join(labels)}}} {MASK}")
            continue
        if VOLATILE_VALUES.match(family) or name.endswith("_created"):
            line = line.rsplit(" ", 1)[0] + " " + MASK
        lines.append(line)
    return "\n".join(lines) + "\n"


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--update", action="store_true", help="rewrite the fixtures from the exporter as it is")
    args = options.parse_args()
    if not args.update:
        options.error("pass --update to regenerate the fixtures (the suite compares them)")
    FIXTURES.mkdir(exist_ok=True)
    for host, name in HOSTS.items():
        (FIXTURES / name).write_text(masked(exposition(host)))
        print(f"wrote {FIXTURES / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
