"""The supervisor's states and its published status: the child states, and the small JSON file
(STATE_DIR/supervisor.json) that the exporter and the tools read.

Like supervisord's states.py, this module depends on nothing but the standard library, so that
anything (the exporter in a sidecar, a script) can read the status without the launcher's machinery.
The supervisor writes the file atomically (launcher/supervision/status_file.py).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = 1
REWRITTEN_EVERY_S = 10.0  # the supervisor rewrites the file on every change, and at least this often
STALE_AFTER_S = 3 * REWRITTEN_EVERY_S  # a reader calls the launcher gone when the file is older than this


class State(enum.StrEnum):
    """A supervised child's state. The states it may go to from each are the table TRANSITIONS below;
    launcher/supervision/supervised_child.py checks every change against it."""

    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    STALLED = "stalled"  # alive and answering, but its work does not move: being stopped for a restart
    STOPPING = "stopping"
    BACKOFF = "backoff"
    STOPPED = "stopped"
    FAILED = "failed"
    # Not restarted because restarting cannot help: a GPU lost or in need of a reset, or stall after stall.
    # A person must act (reset the GPU, drain the node); the launcher exits 4 (EXIT_NEEDS_A_PERSON).
    GPU_FAILED = "gpu-failed"


# Each state -> the states a child may go to from it, and what causes each row's changes. Staying in a
# state is not a transition. supervised_child.py logs any other change as a bug (tests fail on it).
TRANSITIONS: dict[State, frozenset[State]] = {
    # first start(); or it could not be started at all (OSError): retry after a backoff, give up, or escalate
    State.STOPPED: frozenset({State.STARTING, State.BACKOFF, State.FAILED, State.GPU_FAILED}),
    # a healthy probe; or it exited, missed its start-up deadline, or a stop was requested
    State.STARTING: frozenset({State.HEALTHY, State.STOPPING}),
    # a failed probe; or it exited, a watched engine died, or a stop was requested
    State.HEALTHY: frozenset({State.UNHEALTHY, State.STOPPING}),
    # a healthy probe; a stall verdict; or too many failed probes, exit, a dead engine, a requested stop
    State.UNHEALTHY: frozenset({State.HEALTHY, State.STALLED, State.STOPPING}),
    # its group is gone: restart after a backoff, give up, or escalate; STOPPED if a stop was requested meanwhile
    State.STALLED: frozenset({State.BACKOFF, State.FAILED, State.GPU_FAILED, State.STOPPED}),
    # its group is gone: restart after a backoff, give up, or escalate; STOPPED if the stop was a requested one
    State.STOPPING: frozenset({State.BACKOFF, State.FAILED, State.GPU_FAILED, State.STOPPED}),
    # backoff over; or the restart could not be started and the policy gave up or escalated; or a stop
    State.BACKOFF: frozenset({State.STARTING, State.FAILED, State.GPU_FAILED, State.STOPPED}),
    # final: the launcher exits (or, for a helper, leaves it failed); a requested stop leaves it FAILED
    State.FAILED: frozenset(),
    # final, as FAILED: the launcher keeps its monitoring up a moment for the alert, then exits 4
    State.GPU_FAILED: frozenset(),
}


# States a child never leaves: the launcher gives up on it (and exits, for a critical one).
FINAL = frozenset(state for state, onward in TRANSITIONS.items() if not onward)


def transition_allowed(old: State, new: State) -> bool:
    return old == new or new in TRANSITIONS[old]


@dataclass(frozen=True)
class EngineReport:
    """What the launcher last read from vLLM's own /metrics (all times are Unix time)."""

    stall_timeout_s: float  # 0: stall detection is off
    checked_at: float | None = None  # the last reading; None until one succeeded
    last_progress_at: float | None = None  # the engine was last seen idle or moving
    last_token_at: float | None = None
    running: float = 0.0
    waiting: float = 0.0
    asleep: bool = False
    missing_metrics: list[str] | None = None  # names the dashboards and rules use; None: not checked yet
    # The canary (one tiny completion sent to an idle server): 0 interval when it is off.
    canary_interval_s: float = 0.0
    canaries_ok: int = 0
    canaries_failed: int = 0
    canary_last_at: float | None = None
    canary_last_latency_s: float | None = None
    canary_last_outcome: str = ""


@dataclass(frozen=True)
class Transition:
    """One change of a child's state, with why: the recent ones go into incident bundles and the status file."""

    at: float  # Unix time
    old: str
    new: str
    reason: str = ""


@dataclass(frozen=True)
class IncidentNote:
    """The last incident bundle written for a child (launcher/incidents)."""

    at: float  # Unix time of the event
    reason: str  # exited, engine_lost, stalled, unhealthy, startup_timeout, gave_up, gpu_failed
    bundle: str  # its directory
    detail: str = ""


@dataclass(frozen=True)
class ChildStatus:
    name: str
    state: str
    critical: bool
    pid: int | None
    restarts_total: int
    last_exit_code: int | None
    started_at: float | None
    ready_at: float | None
    message: str = ""
    reason: str = ""  # why it is not healthy, while it is not (a failed check, a stall, an exit)
    failures: dict[str, int] = field(default_factory=dict)  # cause -> count, since the launcher started
    engine: EngineReport | None = None
    incidents: dict[str, int] = field(default_factory=dict)  # reason -> bundles written, since the launcher started
    last_incident: IncidentNote | None = None
    transitions: list[Transition] = field(default_factory=list)  # the most recent, oldest first


@dataclass(frozen=True)
class SupervisorStatus:
    launcher_pid: int
    updated_at: float
    children: list[ChildStatus] = field(default_factory=list)
    info: dict[str, str] = field(default_factory=dict)  # model, URLs, versions
    format: int = FORMAT

    def child(self, name: str) -> ChildStatus | None:
        return next((child for child in self.children if child.name == name), None)


def read_status(path: Path) -> SupervisorStatus | None:
    try:
        raw: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if raw.get("format") != FORMAT:
        return None
    try:
        children = [_child_status(child) for child in raw.get("children", [])]
        return SupervisorStatus(
            launcher_pid=int(raw["launcher_pid"]),
            updated_at=float(raw["updated_at"]),
            children=children,
            info={str(k): str(v) for k, v in raw.get("info", {}).items()},
        )
    except (KeyError, TypeError, ValueError):
        return None


def _child_status(raw: dict[str, Any]) -> ChildStatus:
    engine = raw.pop("engine", None)
    last = raw.pop("last_incident", None)
    transitions = raw.pop("transitions", None) or []
    return ChildStatus(
        **raw,
        engine=EngineReport(**engine) if isinstance(engine, dict) else None,
        last_incident=IncidentNote(**last) if isinstance(last, dict) else None,
        transitions=[Transition(**item) for item in transitions if isinstance(item, dict)],
    )
