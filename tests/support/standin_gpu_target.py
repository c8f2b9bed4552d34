"""HARDWARE STAND-IN as a scrape target: the exporter over fake NVML (tests/support/standins) on a free port,
listed in the launcher's Prometheus targets as one more exporter, for tests that need GPU series here."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from launcher.stack.prometheus_targets import write_target_file
from tests.support.launcher_process import REPO_ROOT, free_port


@contextmanager
def standin_gpu_target(
    state_dir: Path, name: str, *options: str, labels: dict[str, str] | None = None
) -> Iterator[str]:
    """Yields the stand-in's address while it runs as target file `name`; `options` go to standin_gpu_exporter."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.standins.standin_gpu_exporter", str(port), *options], cwd=REPO_ROOT
    )
    target_file = state_dir / "generated" / "prometheus" / "targets" / f"{name}.json"
    write_target_file(target_file, [f"127.0.0.1:{port}"], labels)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        target_file.unlink(missing_ok=True)
        process.terminate()
        process.wait(timeout=10)
