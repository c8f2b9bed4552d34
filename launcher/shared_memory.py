"""Finds the POSIX shared memory a process tree holds, so it can be unlinked once the tree is gone.

vLLM's engine and workers talk through /dev/shm segments (hundreds of MB). A SIGKILLed run never
unlinks them, and tmpfs keeps that memory until someone does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import psutil

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


def tree_pids(root_pid: int) -> list[int]:
    try:
        root = psutil.Process(root_pid)
        return [root_pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.Error:
        return []


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
