"""A real process tree shaped like vLLM's (a parent and its child, as the API server and EngineCore), named in a
launcher status file as the vLLM child, for exporter tests whose NVML stand-in puts these pids on its GPUs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from launcher.states import ChildStatus, SupervisorStatus
from launcher.supervision.status_file import write_status

_PARENT = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "time.sleep(60)\n"
)


@contextmanager
def vllm_shaped_tree(status_file: Path) -> Iterator[tuple[int, int]]:
    """Yields (API server pid, engine pid); both are gone afterwards, the child too."""
    parent = subprocess.Popen([sys.executable, "-c", _PARENT])
    try:
        deadline = time.monotonic() + 10
        while not psutil.Process(parent.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)
        engine = psutil.Process(parent.pid).children()[0]
        now = time.time()
        child = ChildStatus("vllm", "healthy", True, parent.pid, 0, None, now, now)
        write_status(status_file, SupervisorStatus(launcher_pid=os.getpid(), updated_at=now, children=[child]))
        try:
            yield parent.pid, engine.pid
        finally:
            engine.kill()  # killing the parent alone would leave the child to init for a minute
    finally:
        parent.kill()
        parent.wait()
