"""Writing a file so that a reader never sees half of it, with its mode set from the start."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Written to a temporary name beside it, then renamed over it. The mode is given at creation, so a
    secret is never readable by others, not even for a moment (the umask can only narrow it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(temporary, mode)  # exactly this mode, whatever the umask
    temporary.replace(path)


def write_private(path: Path, text: str) -> None:
    """For files that hold a secret: readable and writable by their owner only (0600)."""
    write_atomically(path, text, 0o600)


def write_for_container(path: Path, text: str) -> None:
    """For files a container of the docker stack reads as its own user (nobody, 65534): world-readable,
    in a world-readable directory, but under the state dir, whose 0700 keeps other local users out.
    The bind mount hands the container this directory itself, so its ancestors' modes do not apply."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o755)
    write_atomically(path, text, 0o644)
