"""A small real child process whose behaviour a test picks, behind the supervisor's ChildSpec interface.

The child marks itself healthy by creating DIR/<pid>; a test makes it unhealthy by removing that file.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from launcher.supervision.child_spec import Incident, Probe, Timing
from launcher.supervision.restart_policy import Exit

FAST = Timing(startup_timeout_s=10, health_interval_s=0.1, health_failures=2, startup_probe_interval_s=0.05)

SCRIPT = r"""
import os, sys, time, signal
mode, directory = sys.argv[1], sys.argv[2]
pid = os.getpid()
open(os.path.join(directory, f"started-{pid}"), "w").close()

def on_term(signum, frame):
    with open(os.path.join(directory, f"term-{pid}"), "w") as marker:
        marker.write(repr(time.time()))
    if not mode.startswith("ignore-term"):
        sys.exit(0)

signal.signal(signal.SIGTERM, on_term)
if mode.startswith("exit-"):
    sys.exit(int(mode[5:]))
if mode == "slow-start":
    time.sleep(0.4)
if mode != "never-healthy":
    open(os.path.join(directory, str(pid)), "w").close()
if mode == "crash-after":
    time.sleep(0.3)
    sys.exit(3)
if mode == "ignore-term-flaky":
    time.sleep(0.5)
    os.unlink(os.path.join(directory, str(pid)))  # fails its checks: stopped, and it ignores SIGTERM
while True:
    time.sleep(0.05)
"""


@dataclass
class ScriptedChild:
    directory: Path
    mode: str  # healthy | slow-start | crash-after | never-healthy | ignore-term[-flaky] | exit-N
    timing: Timing = FAST
    name: str = "scripted"
    display_name: str = "scripted"
    critical: bool = True
    niceness: int = 0
    probe_delay_s: float = 0.0  # a probe that takes this long, so that stops can land while one is in flight

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

    def watched_pids(self, pid: int) -> tuple[int, ...]:
        return ()

    def done_waiting(self, pid: int, now: float) -> str | None:
        return None

    def quick_check(self, pid: int) -> Probe | None:
        return None

    def probe(self, pid: int) -> Probe:
        if self.probe_delay_s:
            time.sleep(self.probe_delay_s)
        return Probe((self.directory / str(pid)).exists(), "no health file")

    def engine_report(self) -> None:
        return None

    def fatal_exit_reason(self, exit: Exit) -> str | None:
        return "rejected its arguments" if exit.code == 2 and not exit.ever_healthy else None

    def escalation(self, exit: Exit) -> str | None:
        return None

    def record_incident(self, pid: int | None, incident: Incident) -> Path | None:
        return None

    def became_healthy(self) -> None:
        pass
