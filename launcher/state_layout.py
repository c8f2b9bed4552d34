"""Where the launcher keeps its files. Everything a run writes lives under the state dir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from launcher.file_writes import ensure_directory

APP = "serve-with-monitoring"


def _first_systemd_dir(variable: str) -> Path | None:
    # systemd sets STATE_DIRECTORY / CACHE_DIRECTORY from StateDirectory= / CacheDirectory=.
    value = os.environ.get(variable, "").split(":")[0]
    return Path(value) if value else None


def default_state_dir() -> Path:
    systemd_dir = _first_systemd_dir("STATE_DIRECTORY")
    if systemd_dir:
        return systemd_dir
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / APP


def shared_cache_dir() -> Path:
    """Caches worth sharing between state dirs: the tiny model and what we learned about vLLM."""
    systemd_dir = _first_systemd_dir("CACHE_DIRECTORY")
    if systemd_dir:
        return systemd_dir
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / APP


@dataclass(frozen=True)
class StateLayout:
    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def cache(self) -> Path:
        """vLLM, torch and compiler caches: kept across restarts, so a restart is warm."""
        return self.root / "cache"

    @property
    def run(self) -> Path:
        """Per-run scratch (TMPDIR, sockets): wiped at every start of a child."""
        return self.root / "run"

    @property
    def generated(self) -> Path:
        """Configuration the launcher writes for its children."""
        return self.root / "generated"

    @property
    def fleet_targets(self) -> Path:
        """This host's targets for a central Prometheus (file_sd; the exporter also serves it at /sd)."""
        return self.generated / "fleet" / "targets.json"

    @property
    def incidents(self) -> Path:
        """Incident bundles (launcher/incidents): the evidence of each crash, stall or failed probe."""
        return self.root / "incidents"

    @property
    def supervisor_state(self) -> Path:
        return self.root / "supervisor.json"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def scratch(self, name: str) -> Path:
        return self.run / name

    def ensure(self) -> None:
        for directory in (self.root, self.logs, self.cache, self.run, self.generated):
            ensure_directory(directory)  # a link in their place is refused, not followed
