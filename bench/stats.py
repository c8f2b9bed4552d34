"""Small statistics and machine description for the benchmark reports."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[position]


def rotated(items: Sequence[str], round_index: int) -> list[str]:
    """The run order for one round: A B C, then B C A, C A B, ... so no condition always runs first."""
    shift = round_index % len(items)
    return [*items[shift:], *items[:shift]]


def log_round(**fields: object) -> None:
    """One line of progress per run on stderr; stdout carries only the final JSON report."""
    print(json.dumps(fields), file=sys.stderr, flush=True)


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values) if values else float("nan"),
        "min": min(values) if values else float("nan"),
        "max": max(values) if values else float("nan"),
        "n": len(values),
    }


def fmt(stats: dict[str, float], digits: int = 2) -> str:
    return f"{stats['median']:.{digits}f} ({stats['min']:.{digits}f}-{stats['max']:.{digits}f})"


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory_gib = 0.0
    vllm = "not installed"
    try:
        vllm = (
            subprocess.run(
                [sys.executable, "-c", "import importlib.metadata as m; print(m.version('vllm'))"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.strip()
            or vllm
        )
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{memory_gib:.0f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "vllm": vllm,
    }
