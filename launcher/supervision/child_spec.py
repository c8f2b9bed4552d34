"""What the supervisor needs to know about one kind of child: how to run it and how to judge it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from launcher.states import EngineReport, Transition
from launcher.supervision.restart_policy import Exit


@dataclass(frozen=True)
class Probe:
    healthy: bool
    detail: str = ""
    immediate: bool = False  # restart now rather than after `health_failures` misses in a row
    cause: str = "unhealthy"  # counted per child in the status file: unhealthy, engine_lost, stalled ...
    stalled: bool = False  # alive and answering, but its work does not move: shown as the state "stalled"


@dataclass(frozen=True)
class Incident:
    """An unplanned event, as the supervisor saw it: what evidence the child's spec takes of it is its own."""

    reason: str  # exited, engine_lost, stalled, unhealthy, startup_timeout, gave_up, gpu_failed, on_demand
    detail: str
    at: float  # Unix time of the event
    transitions: tuple[Transition, ...] = ()


@dataclass(frozen=True)
class Timing:
    startup_timeout_s: float
    health_interval_s: float
    health_failures: int
    startup_probe_interval_s: float = 1.0


class ChildSpec(Protocol):
    name: str
    display_name: str
    critical: bool  # giving up on a critical child stops the launcher; on any other it does not
    timing: Timing
    log_path: Path
    niceness: int  # added to the launcher's own; its processes inherit it

    def argv(self) -> tuple[str, ...]: ...

    def env(self) -> dict[str, str]: ...

    def prepare(self) -> None:
        """Runs before every start: wipe scratch space, write generated config."""

    def probe(self, pid: int) -> Probe:
        """Runs on a worker thread: it may block up to its own timeout."""

    def quick_check(self, pid: int) -> Probe | None:
        """Runs on the supervisor's loop once a process from watched_pids() has exited, so it must take
        microseconds: a failure seen without waiting for the next probe (vLLM's engine process
        vanishing, say). None when all is well."""

    def forget_run(self) -> None:
        """Runs after every exit: drop what was learned about the last run."""

    def watched_pids(self, pid: int) -> Collection[int]:
        """Processes besides the main one whose exit the supervisor should wake for (vLLM's engines),
        asked each time the supervisor wakes while the child runs; quick_check() then says what their exit
        means."""

    def done_waiting(self, pid: int, now: float) -> str | None:
        """Asked whenever the supervisor wakes while the child stops, so it must be cheap. A reason when
        its real work has ended and the rest of the grace period would buy nothing (vLLM's HTTP server
        left waiting for clients whose streams were already aborted); None to go on waiting."""

    def before_kill(self, pgid: int) -> None:
        """Runs just before the child's process group is SIGKILLed, while it can still be inspected."""

    def fatal_exit_reason(self, exit: Exit) -> str | None:
        """A reason when this exit means restarting is pointless (for example, rejected arguments)."""

    def escalation(self, exit: Exit) -> str | None:
        """Asked before every restart: a reason when restarting cannot help and a person must act (a GPU that
        is lost or needs a reset, stall after stall). The launcher then stops with EXIT_NEEDS_A_PERSON."""

    def record_incident(self, pid: int | None, incident: Incident) -> Path | None:
        """Runs on the supervisor's loop at an unplanned event, before anything of the child is killed, within a
        time budget of its own: takes the evidence and says where it went (None: nothing taken)."""

    def became_healthy(self) -> None:
        """Runs each time the child becomes healthy, the first time after a restart included."""

    def engine_report(self) -> EngineReport | None:
        """What the child's own metrics say of its progress, for the status file; None for a plain helper."""
