"""STATE_DIR/incidents/: one directory per bundle, named `<UTC time>-<reason>`, mode 0700 with files 0600,
written without following a symlink anyone may have planted, and bounded: the newest `keep` bundles within
a size cap, the oldest going first."""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.incidents.redaction import Redactor

SUMMARY = "summary.json"
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def bundle_id(at: float, reason: str) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(at)) + "-" + reason.replace("_", "-")


class Bundle:
    """One bundle being written. Every text goes through the redactor first: no secret reaches the disk."""

    def __init__(self, path: Path, redactor: Redactor) -> None:
        self.path = path
        self.redactor = redactor
        self.bytes_written = 0

    @property
    def id(self) -> str:
        return self.path.name

    def write_text(self, name: str, text: str, replace: bool = False) -> None:
        data = self.redactor.redact(text).encode("utf-8", errors="replace")
        directory = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if replace:
                temporary = f".{name}.tmp"
                descriptor = os.open(temporary, _CREATE | os.O_TRUNC, 0o600, dir_fd=directory)
                _write_all(descriptor, data)
                os.rename(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
            else:
                _write_all(os.open(name, _CREATE, 0o600, dir_fd=directory), data)
        finally:
            os.close(directory)
        self.bytes_written += len(data)

    def write_json(self, name: str, document: Any, replace: bool = False) -> None:
        self.write_text(name, json.dumps(document, indent=1, default=str) + "\n", replace=replace)


def _write_all(descriptor: int, data: bytes) -> None:
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


@dataclass(frozen=True)
class StoredBundle:
    path: Path
    summary: dict[str, Any]

    @property
    def id(self) -> str:
        return self.path.name


class IncidentStore:
    def __init__(self, root: Path, keep: int, max_bytes: int) -> None:
        self.root = root
        self.keep = keep
        self.max_bytes = max_bytes

    def _ensure_root(self) -> None:
        try:
            self.root.mkdir(mode=0o700)
        except FileExistsError:
            info = self.root.lstat()
            if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                raise OSError(f"{self.root} is not a directory of ours (a symlink, or another user's)") from None

    def create(self, at: float, reason: str, redactor: Redactor) -> Bundle:
        """A new, empty bundle directory. mkdir never follows a symlink in its last component."""
        self._ensure_root()
        base = bundle_id(at, reason)
        for attempt in range(100):
            path = self.root / (base if attempt == 0 else f"{base}-{attempt + 1}")
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:
                continue
            return Bundle(path, redactor)
        raise OSError(f"cannot name a new bundle in {self.root}")

    def paths(self) -> list[Path]:
        """Oldest first: the names start with the UTC time."""
        try:
            entries = sorted(self.root.iterdir())
        except OSError:
            return []
        return [entry for entry in entries if entry.is_dir() and not entry.is_symlink()]

    def bundles(self) -> list[StoredBundle]:
        found = []
        for path in self.paths():
            try:
                summary = json.loads((path / SUMMARY).read_text())
            except (OSError, ValueError):
                summary = {}
            found.append(StoredBundle(path, summary if isinstance(summary, dict) else {}))
        return found

    def find(self, wanted: str) -> StoredBundle | None:
        """By id, by a unique prefix of one, or `latest`."""
        bundles = self.bundles()
        if wanted == "latest":
            return bundles[-1] if bundles else None
        exact = [bundle for bundle in bundles if bundle.id == wanted]
        matching = exact or [bundle for bundle in bundles if bundle.id.startswith(wanted)]
        return matching[0] if len(matching) == 1 else None

    def prune(self, keep_also: Path | None = None) -> list[Path]:
        """The oldest go first, until at most `keep` are left within the size cap; `keep_also` (the bundle just
        written) always stays."""
        paths = self.paths()
        removed: list[Path] = []
        sizes = {path: _size(path) for path in paths}
        total = sum(sizes.values())
        for path in paths:
            left = len(paths) - len(removed)
            if left <= self.keep and total <= self.max_bytes:
                break
            if path == keep_also:
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            total -= sizes[path]
        return removed


def _size(path: Path) -> int:
    total = 0
    for entry in path.iterdir():
        try:
            total += entry.lstat().st_size
        except OSError:
            continue
    return total
