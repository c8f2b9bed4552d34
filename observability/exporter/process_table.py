"""The host's process table, read once per collection straight from /proc: parent, CPU time and resident
memory of every process, so that summing each supervised child's tree costs one scan, not one per child.

psutil's children(recursive=True) reads every process's stat file on each call; the supervisor collector
asked it once per child every interval, and that was most of the exporter's idle CPU.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
# One reading serves the collections of the next 10 s: a scan costs about 25 us per process (3 ms on a
# quiet host, 25 ms on a busy one), while RSS and CPU seconds per tree need no 5-second freshness.
_REUSE_S = 10.0
_MIN_REREAD_S = 1.0


@dataclass(frozen=True)
class Row:
    ppid: int
    cpu_seconds: float
    rss_bytes: int
    zombie: bool


class ProcessTable:
    def __init__(self, rows: dict[int, Row]) -> None:
        self.rows = rows
        self._children: dict[int, list[int]] = defaultdict(list)
        for pid, row in rows.items():
            self._children[row.ppid].append(pid)

    def tree(self, root: int) -> list[int]:
        """root and every descendant still in the table."""
        if root not in self.rows:
            return []
        found, pending = [], [root]
        while pending:
            pid = pending.pop()
            found.append(pid)
            pending.extend(self._children.get(pid, ()))
        return found

    def usage(self, root: int) -> tuple[float, float, int]:
        """Resident bytes, CPU seconds and live process count over root's tree."""
        rss = cpu = 0.0
        count = 0
        for pid in self.tree(root):
            row = self.rows[pid]
            if row.zombie:
                continue
            rss += row.rss_bytes
            cpu += row.cpu_seconds
            count += 1
        return rss, cpu, count


def _read_row(pid: str) -> Row | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode(errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # the command name may hold spaces and parentheses
    try:
        # After the name: state(0) ppid(1) ... utime(11) stime(12) ... rss(21), counting from the state.
        return Row(
            ppid=int(fields[1]),
            cpu_seconds=(int(fields[11]) + int(fields[12])) / _TICKS,
            rss_bytes=int(fields[21]) * _PAGE,
            zombie=fields[0] in ("Z", "X"),
        )
    except (IndexError, ValueError):
        return None


def read_process_table() -> ProcessTable:
    rows = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            row = _read_row(entry)
            if row is not None:
                rows[int(entry)] = row
    return ProcessTable(rows)


class SharedProcessTable:
    """One reading shared by the collectors that need it, renewed every _REUSE_S."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table: ProcessTable | None = None
        self._read_at = 0.0

    def get(self, roots: Iterable[int] = ()) -> ProcessTable:
        """A reading at most _REUSE_S old, and newer when one of `roots` (a restarted child, say) is not
        in it yet."""
        with self._lock:
            now = time.monotonic()
            stale = self._table is None or now - self._read_at > _REUSE_S
            unseen = self._table is not None and any(pid not in self._table.rows for pid in roots)
            if stale or (unseen and now - self._read_at > _MIN_REREAD_S):
                self._table = read_process_table()
                self._read_at = now
            assert self._table is not None
            return self._table
