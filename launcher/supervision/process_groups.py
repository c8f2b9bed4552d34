"""What is left of a process group, read straight from /proc: its members and their states.

One place for it, used by the supervisor, the vLLM child's cleanup and the orphan guard; it imports only
the standard library, because the guard runs with nothing else. A scan of /proc is a few hundred
microseconds on a server's process table, so the supervisor may call it freely while a child stops.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

_PROC = "/proc"


@dataclass(frozen=True)
class Member:
    pid: int
    state: str  # the kernel's letter: R running, S sleeping, D disk wait, T stopped, Z zombie ...

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")

    @property
    def stopped(self) -> bool:
        return self.state in ("T", "t")


def _stat(pid: str) -> tuple[str, int] | None:
    """(state, pgid) of one process; None once it has gone. The command name may hold spaces and
    parentheses, so the fields are read from the last ')'."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as handle:
            text = handle.read().decode(errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return fields[0], int(fields[2])
    except (IndexError, ValueError):
        return None


def members(pgid: int) -> list[Member]:
    """Every process of the group, zombies included, the leader's orphans too."""
    found = []
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        stat = _stat(entry)
        if stat is not None and stat[1] == pgid:
            found.append(Member(int(entry), stat[0]))
    return found


def alive(pgid: int) -> bool:
    """Any member still running. Zombies do not count: vLLM's orphans are reaped by init, which may take a
    second (or by us, as PID 1 in a container), and until then they would make a dead group look alive."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return any(not member.zombie for member in members(pgid))


def live_pids(pgid: int) -> list[int]:
    return [member.pid for member in members(pgid) if not member.zombie]


def stopped_pids(pgid: int) -> list[int]:
    """Members frozen by a stop signal (SIGSTOP, a debugger, a cgroup freezer)."""
    return [member.pid for member in members(pgid) if member.stopped]


def signal_group(pgid: int, signum: int) -> bool:
    """True when the signal was delivered to at least one member."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_group(pgid: int) -> bool:
    return signal_group(pgid, signal.SIGKILL)
