"""The Python stacks of every thread of a live, perhaps frozen, process, read from outside it by py-spy.

py-spy reads the interpreter's memory (process_vm_readv), so it needs no cooperation from the process: it
reads a SIGSTOPped engine, one stuck in a CUDA or NCCL call while holding the GIL, and one in uninterruptible
sleep, where a signal-driven dump (faulthandler) would never run. It needs ptrace rights over the process:
root, CAP_SYS_PTRACE, or the same user where Yama's ptrace_scope is 0 (see the README's "Incident bundles").
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.helper_environment import helper_environment
from launcher.installed_tools import find_tool

# Frames of a thread that waits for work rather than doing it: shown after the ones that tell where it hung.
_WAITING_FRAMES = ("wait", "select", "poll", "sleep", "recv", "accept", "_bootstrap", "get", "acquire", "epoll")


def find_py_spy() -> Path | None:
    return find_tool("py-spy")  # pip installs it beside this Python, with the launcher


@dataclass(frozen=True)
class ThreadStack:
    pid: int
    process: str  # its role: API server, EngineCore, Worker ... from its command line
    thread_id: int
    name: str
    active: bool
    owns_gil: bool
    frames: tuple[str, ...]  # innermost first: "function (file:line)"

    @property
    def waiting(self) -> bool:
        top = self.frames[0].split(" ", 1)[0].lower() if self.frames else ""
        return not self.active and any(word in top for word in _WAITING_FRAMES)


@dataclass
class StackReading:
    threads: list[ThreadStack] = field(default_factory=list)
    problems: dict[int, str] = field(default_factory=dict)  # pid -> why it could not be read
    raw: dict[int, Any] = field(default_factory=dict)  # pid -> py-spy's JSON


def read_stacks(tool: Path | None, pids: dict[int, str], timeout_s: float, native: bool = False) -> StackReading:
    """`pids` maps each pid to its role. A process that cannot be read is named in `problems`, with why."""
    reading = StackReading()
    if tool is None:
        for pid in pids:
            reading.problems[pid] = "py-spy is not installed (pip install py-spy, or the launcher's [incidents])"
        return reading
    for pid, role in pids.items():
        command = [str(tool), "dump", "--json", "--pid", str(pid), *(["--native"] if native else [])]
        try:
            result = subprocess.run(
                command,
                env=helper_environment(),
                capture_output=True,
                text=True,
                timeout=max(0.1, timeout_s),
                check=False,
            )
            if result.returncode != 0 and "suspend" in result.stderr:
                # py-spy pauses a process to read a consistent stack, and cannot pause one already stopped
                # (SIGSTOP, a debugger): that one holds still anyway, so it is read without pausing.
                command.append("--nonblocking")
                result = subprocess.run(
                    command, env=helper_environment(), capture_output=True, text=True, timeout=max(0.1, timeout_s)
                )
        except subprocess.TimeoutExpired:
            reading.problems[pid] = f"py-spy did not finish within {timeout_s:.1f} s"
            continue
        except OSError as error:
            reading.problems[pid] = f"cannot run py-spy: {error.strerror or error}"
            continue
        if result.returncode != 0:
            reading.problems[pid] = _why(result.stderr or result.stdout)
            continue
        try:
            document = json.loads(result.stdout)
        except ValueError:
            reading.problems[pid] = "py-spy's output was not JSON"
            continue
        reading.raw[pid] = document
        reading.threads += [_thread(pid, role, thread) for thread in document if isinstance(thread, dict)]
    return reading


def _why(output: str) -> str:
    # py-spy prints "Error: ..." and its causes, then a backtrace of its own that says nothing to a user.
    lines = [line.strip() for line in output.split("Stack backtrace:", 1)[0].splitlines() if line.strip()]
    text = "; ".join(line.removeprefix("Error: ") for line in lines if line != "Caused by:") or "py-spy failed"
    if "Permission denied" in output or "Operation not permitted" in output:
        text += (
            " (no ptrace rights over the process: run the launcher as root, give it CAP_SYS_PTRACE, "
            "or set kernel.yama.ptrace_scope=0; see the README's Incident bundles)"
        )
    return text


def _thread(pid: int, role: str, thread: dict[str, Any]) -> ThreadStack:
    frames = []
    for frame in thread.get("frames", []):
        where = frame.get("short_filename") or frame.get("filename") or "?"
        frames.append(f"{frame.get('name', '?')} ({where}:{frame.get('line', '?')})")
    return ThreadStack(
        pid=pid,
        process=role,
        thread_id=int(thread.get("thread_id", 0)),
        name=str(thread.get("thread_name") or ""),
        active=bool(thread.get("active")),
        owns_gil=bool(thread.get("owns_gil")),
        frames=tuple(frames),
    )


def telling_first(threads: list[ThreadStack]) -> list[ThreadStack]:
    """The threads that tell where it hung first: running ones and those holding the GIL, then any not parked
    in a wait, the engine's processes before the API server; idle pools last."""
    roles = ("EngineCore", "Worker", "API server")

    def rank(thread: ThreadStack) -> tuple[int, int, int]:
        role = next((index for index, name in enumerate(roles) if name in thread.process), len(roles))
        return (0 if thread.active or thread.owns_gil else 1 if not thread.waiting else 2, role, thread.pid)

    return sorted(threads, key=rank)


def render(threads: list[ThreadStack], problems: dict[int, str]) -> str:
    lines = []
    for thread in threads:
        state = "active" if thread.active else "idle"
        gil = ", holds the GIL" if thread.owns_gil else ""
        lines.append(f"{thread.process} pid {thread.pid}, thread {thread.thread_id} ({state}{gil}): {thread.name}")
        lines += [f"    {frame}" for frame in thread.frames] or ["    (no Python frames)"]
        lines.append("")
    for pid, problem in problems.items():
        lines.append(f"pid {pid}: not read: {problem}")
    return "\n".join(lines) + "\n"
