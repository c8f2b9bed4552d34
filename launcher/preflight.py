"""Checks that fail fast, with one line each, before anything starts."""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
from pathlib import Path

from launcher.errors import PreflightError, UsageError

log = logging.getLogger(__name__)


def looks_like_local_path(model: str) -> bool:
    """A hub id is `name` or `org/name`; anything else that names a file system path is local."""
    return model.startswith(("/", "./", "../", "~")) or model.count("/") >= 2 or os.path.exists(model)


def check_model(model: str | None) -> None:
    if model is None or not looks_like_local_path(model):
        return
    path = Path(model).expanduser()
    if not path.exists():
        raise PreflightError(f"model path {model} does not exist")
    if path.is_dir() and not (path / "config.json").exists() and not any(path.glob("*.gguf")):
        raise PreflightError(f"model path {model} holds no config.json: not a model directory")


def check_port_free(host: str, port: int, what: str) -> None:
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise UsageError(f"{what}: cannot resolve host {host!r}: {error.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # SO_REUSEADDR, as servers use: a port held only by TIME_WAIT connections is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PreflightError(f"{what}: port {port} on {host} is already in use") from None
            if error.errno == errno.EADDRNOTAVAIL:
                raise UsageError(f"{what}: {host} is not an address of this machine") from None
            if error.errno == errno.EACCES:
                raise PreflightError(f"{what}: not allowed to listen on port {port} (below 1024 needs root)") from None
            raise PreflightError(f"{what}: cannot listen on {host}:{port}: {error.strerror}") from None


def check_state_dir(path: Path) -> None:
    """The state dir exists, is the effective user's own directory, and is 0700: it holds logs, secrets and
    the API's state. `path` is the one the settings resolved, so a link in its place was put there since."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError as error:
        raise PreflightError(f"cannot create state dir {path}: {error.strerror}") from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise PreflightError(f"state dir {path} is a symlink or not a directory; give the directory itself")
    # Whoever owns it can plant links where the launcher writes (and a root launcher would follow them).
    if info.st_uid != os.geteuid():
        raise PreflightError(
            f"state dir {path} is not owned by this user (its owner is uid {info.st_uid}, the launcher runs as"
            f" uid {os.geteuid()}): chown it, or pass a --state-dir of this user's"
        )
    if not os.access(path, os.W_OK | os.X_OK):
        raise PreflightError(f"state dir {path} is not writable")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        try:
            path.chmod(0o700)
        except OSError as error:
            raise PreflightError(
                f"state dir {path} is mode {mode:o} and cannot be made 0700: {error.strerror}"
            ) from None
        log.info("state dir %s was mode %o; made it 0700 (it holds logs and secrets)", path, mode)
