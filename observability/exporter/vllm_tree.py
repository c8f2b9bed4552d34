"""The supervised vLLM process tree, as the launcher publishes it in its state file."""

from __future__ import annotations

from pathlib import Path

from launcher.states import SupervisorStatus, read_status
from observability.exporter.process_table import SharedProcessTable


class SupervisorView:
    """Reads the launcher's state file; knows nothing when there is no launcher (a standalone exporter)."""

    def __init__(self, state_file: Path | None) -> None:
        self.state_file = state_file
        self.processes = SharedProcessTable()

    def status(self) -> SupervisorStatus | None:
        return read_status(self.state_file) if self.state_file else None

    def tree_pids(self, child: str = "vllm") -> set[int]:
        status = self.status()
        entry = status.child(child) if status else None
        if entry is None or entry.pid is None:
            return set()
        return set(self.processes.get([entry.pid]).tree(entry.pid))
