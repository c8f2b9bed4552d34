"""A small real child process whose behaviour a test picks, behind the supervisor's ChildSpec interface.

The child marks itself healthy by creating DIR/<pid>; a test makes it unhealthy by removing that file.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from launcher.child_spec import Probe, Timing
from launcher.restart_policy import Exit

FAST = Timing(startup_timeout_s=10, health_interval_s=0.1, health_failures=2, startup_probe_interval_s=0.05)

SCRIPT = r"""
import os, sys, time, signal
mode, directory = sys.argv[1], sys.argv[2]
if mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if mode.startswith("exit-"):
    sys.exit(int(mode[5:]))
if mode != "never-healthy":
    open(os.path.join(directory, str(os.getpid())), "w").close()
while True:
    time.sleep(0.05)
"""


@dataclass
class ScriptedChild:
    directory: Path
    mode: str  # healthy | never-healthy | ignore-term | exit-N
    timing: Timing = FAST
    name: str = "scripted"
    display_name: str = "scripted"
    critical: bool = True
    niceness: int = 0

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.name}.log"

    def argv(self) -> tuple[str, ...]:
        return (sys.executable, "-c", SCRIPT, self.mode, str(self.directory))

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def prepare(self) -> None:
        pass

    def forget_run(self) -> None:
        pass

    def before_kill(self, pgid: int) -> None:
        pass

    def only_front_end_left(self, pid: int) -> bool:
        return False

    def quick_check(self, pid: int) -> Probe | None:
        return None

    def probe(self, pid: int) -> Probe:
        return Probe((self.directory / str(pid)).exists(), "no health file")

    def engine_report(self) -> None:
        return None

    def fatal_exit_reason(self, exit: Exit) -> str | None:
        return "rejected its arguments" if exit.code == 2 and not exit.ever_healthy else None
