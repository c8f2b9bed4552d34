"""The supervised vLLM process tree, as the launcher publishes it in its state file."""

from __future__ import annotations

from pathlib import Path

import psutil

from launcher.states import SupervisorStatus, read_status


class SupervisorView:
    """Reads the launcher's state file; knows nothing when there is no launcher (a standalone exporter)."""

    def __init__(self, state_file: Path | None) -> None:
        self.state_file = state_file

    def status(self) -> SupervisorStatus | None:
        return read_status(self.state_file) if self.state_file else None

    def tree(self, child: str = "vllm") -> list[psutil.Process]:
        status = self.status()
        entry = status.child(child) if status else None
        if entry is None or entry.pid is None:
            return []
        try:
            root = psutil.Process(entry.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def tree_pids(self, child: str = "vllm") -> set[int]:
        return {process.pid for process in self.tree(child)}
