"""Which vllm: names the shipped dashboards and rules query, and which of them a running vLLM lacks.

The dashboards are checked against vLLM's source when they are generated; this is the same check at run
time, against the server actually running, so a vLLM upgrade that renames a metric is seen the day it
happens and not when somebody finds a panel empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from observability.dashboards.metric_names import names_in
from observability.files import GRAFANA_DASHBOARDS, PROMETHEUS_RULES

_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")
# Only with an optional feature on: speculative decoding, --kv-cache-metrics, LoRA adapters.
OPTIONAL_FEATURE_PREFIXES = ("vllm:spec_decode_", "vllm:kv_block_", "vllm:lora_")


def watched_vllm_names(
    dashboard_dirs: Iterable[Path] = (GRAFANA_DASHBOARDS,), rule_dirs: Iterable[Path] = (PROMETHEUS_RULES,)
) -> frozenset[str]:
    files = [path for directory in dashboard_dirs for path in sorted(directory.glob("*.json"))]
    files += [path for directory in rule_dirs for path in sorted(directory.glob("*.yml"))]
    names: set[str] = set()
    for path in files:
        try:
            names |= names_in(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    return frozenset(
        name for name in names if name.startswith("vllm:") and not name.startswith(OPTIONAL_FEATURE_PREFIXES)
    )


def _exported(name: str, exported: frozenset[str]) -> bool:
    if name in exported:
        return True
    return any(name.endswith(suffix) and name.removesuffix(suffix) in exported for suffix in _SUFFIXES)


def missing_names(watched: Iterable[str], exported: frozenset[str]) -> list[str]:
    """`exported` holds every sample name and family name (# TYPE) of one /metrics page."""
    return sorted(name for name in watched if not _exported(name, exported))
