"""Whether restarting vLLM can help: a GPU that fell off the bus, needs a reset, or failed to remap a row will
fail the next run too. Read from the exporter's view, which has seen every XID event since it started."""

from __future__ import annotations

import math
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

# XIDs after which the GPU needs a reset (or the node a drain) before it can run work again (NVIDIA's XID
# catalogue): 79 fell off the bus; 48 double-bit ECC; 94/95 contained/uncontained ECC; 119/120 GSP errors.
RESET_XIDS = {
    "79": "fell off the bus",
    "48": "a double-bit ECC error",
    "94": "a contained ECC error",
    "95": "an uncontained ECC error",
    "119": "a GSP RPC timeout",
    "120": "a GSP error",
}


def gpu_problems(exporter_page: str) -> list[str]:
    """One line per GPU that restarting cannot fix; empty when every GPU the exporter sees is fit."""
    problems: list[str] = []
    try:
        families = list(text_string_to_metric_families(exporter_page))
    except ValueError:
        return problems
    for family in families:
        for sample in family.samples:
            gpu = sample.labels.get("gpu", "?")
            value = sample.value
            if math.isnan(value) or value <= 0:
                continue
            if family.name == "swm_gpu_xid_errors" and sample.name.endswith("_total"):
                xid = sample.labels.get("xid", "")
                if xid in RESET_XIDS:
                    problems.append(f"GPU {gpu} reported XID {xid} ({RESET_XIDS[xid]}) {value:.0f} time(s)")
            elif family.name == "swm_gpu_lost":
                problems.append(f"GPU {gpu} is lost (NVML: GPU is lost)")
            elif family.name == "DCGM_FI_DEV_ROW_REMAP_FAILURE":
                problems.append(f"GPU {gpu} failed to remap a row of its memory")
    return problems


class GpuHealth:
    """Asked before each restart: the exporter's page, read with a short timeout; no page decides nothing."""

    def __init__(self, read_page: Callable[[], str | None]) -> None:
        self._read_page = read_page

    def needs_a_person(self) -> str | None:
        page = self._read_page()
        if page is None:
            return None
        problems = gpu_problems(page)
        return "; ".join(problems) if problems else None
