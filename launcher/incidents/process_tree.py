"""vLLM's processes as the kernel sees them at the moment of the incident: state (R, S, D, T, Z), CPU time,
resident memory, and for one in uninterruptible sleep (D) the kernel function it waits in."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

ENGINE_TITLES = ("VLLM::EngineCore", "VLLM::Worker")  # vLLM names its processes with setproctitle


@dataclass(frozen=True)
class ProcessRow:
    pid: int
    ppid: int
    role: str
    state: str  # one letter, as in /proc/PID/stat
    cpu_user_s: float
    cpu_system_s: float
    rss_bytes: int
    threads: int
    command: str
    wait_channel: str  # the kernel function a sleeping process waits in, where readable
    kernel_stack: str  # /proc/PID/stack: root only, and only worth it for D

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def role_of(command: str, is_root: bool) -> str:
    for title in ENGINE_TITLES:
        if command.startswith(title):
            return title.split("::", 1)[1]
    return "API server" if is_root else "helper process"


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _state_letter(pid: int) -> str:
    stat = _read(Path(f"/proc/{pid}/stat"))
    # "pid (comm) S ...": the comm may hold spaces and parentheses, the state follows the last ")".
    return stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"


def tree_pids(root_pid: int | None, group_pids: list[int]) -> list[int]:
    """The root and its descendants while the root lives; after it exited, what is left of its group."""
    if root_pid is not None:
        try:
            root = psutil.Process(root_pid)
            return [root_pid, *(child.pid for child in root.children(recursive=True))]
        except psutil.Error:
            pass
    return list(group_pids)


def snapshot(pids: list[int], root_pid: int | None) -> list[ProcessRow]:
    rows = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            with process.oneshot():
                # One line per process: a `python -c` script's newlines would break the table apart.
                command = " ".join(process.cmdline()).replace("\n", "\\n") or process.name()
                times = process.cpu_times()
                rss = process.memory_info().rss
                threads = process.num_threads()
                ppid = process.ppid()
        except psutil.Error:
            continue
        state = _state_letter(pid)
        rows.append(
            ProcessRow(
                pid=pid,
                ppid=ppid,
                role=role_of(command, pid == root_pid),
                state=state,
                cpu_user_s=times.user,
                cpu_system_s=times.system,
                rss_bytes=rss,
                threads=threads,
                command=command,
                wait_channel=_read(Path(f"/proc/{pid}/wchan")) if state in ("D", "S") else "",
                kernel_stack=_read(Path(f"/proc/{pid}/stack")) if state == "D" else "",
            )
        )
    return rows


def render(rows: list[ProcessRow]) -> str:
    lines = [f"{'PID':>7} {'PPID':>7} S {'CPU user':>9} {'CPU sys':>8} {'RSS':>9} {'THR':>4}  ROLE / COMMAND"]
    for row in rows:
        lines.append(
            f"{row.pid:>7} {row.ppid:>7} {row.state} {row.cpu_user_s:>8.1f}s {row.cpu_system_s:>7.1f}s "
            f"{row.rss_bytes / 2**20:>7.0f}MB {row.threads:>4}  {row.role}: {row.command}"
        )
        if row.wait_channel and row.state == "D":
            lines.append(f"{'':>17}waits in the kernel at {row.wait_channel}")
        if row.kernel_stack:
            lines += [f"{'':>17}{line}" for line in row.kernel_stack.splitlines()]
    return "\n".join(lines) + "\n"
