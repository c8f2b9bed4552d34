"""Finds the POSIX shared memory a process tree holds, so it can be unlinked once the tree is gone.

vLLM's engine and workers talk through /dev/shm segments (hundreds of MB). A SIGKILLed run never
unlinks them, and tmpfs keeps that memory until someone does. Standard library only: the orphan guard,
which outlives the launcher, sweeps with it too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

SHM_DIR = "/dev/shm"  # noqa: S108 - read, never created here


def _mapped(pid: int) -> set[str]:
    found: set[str] = set()
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                position = line.find(SHM_DIR + "/")
                if position != -1 and not line.rstrip().endswith("(deleted)"):
                    found.add(line[position:].rstrip("\n"))
    except OSError:
        pass
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith(SHM_DIR + "/") and not target.endswith("(deleted)"):
                found.add(target)
    except OSError:
        pass
    return found


def shared_memory_of(pids: Iterable[int]) -> set[Path]:
    found: set[str] = set()
    for pid in pids:
        found |= _mapped(pid)
    return {Path(path) for path in found}


def unlink_all(paths: Iterable[Path]) -> list[Path]:
    removed = []
    for path in paths:
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
        except OSError:
            continue
    return removed


# What Python's multiprocessing names its segments and semaphores; vLLM makes both.
_MULTIPROCESSING_NAMES = ("psm_", "sem.mp-")


def _in_use() -> set[str]:
    """Every /dev/shm path some live process maps or holds open (our own user's, at least)."""
    found: set[str] = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            found |= _mapped(int(name))
    return found


def orphaned_since(started_at: float) -> list[Path]:
    """Multiprocessing segments and semaphores of ours, made since `started_at`, that nothing uses any more.

    A run killed before a probe saw its segments leaves these; nobody can ever use them again, because
    their creators are gone and no live process holds them.
    """
    try:
        entries = [entry for entry in os.scandir(SHM_DIR) if entry.name.startswith(_MULTIPROCESSING_NAMES)]
    except OSError:
        return []
    candidates = []
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if info.st_uid == os.getuid() and info.st_ctime >= started_at - 1.0:
            candidates.append(Path(entry.path))
    if not candidates:
        return []
    in_use = _in_use()
    return [path for path in candidates if str(path) not in in_use]
