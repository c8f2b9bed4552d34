"""Writing files under the state dir: never through a symlink, never half of one, with the mode set from the start.

The state dir is resolved once, when the settings are read, so the path of every file under it holds no link
at all. Each directory on the way is opened with O_NOFOLLOW, from / down, and a file is opened or renamed
inside the directory so opened: a link planted anywhere on the way (a subdirectory swapped for a link to
/etc, a link at a log's name or at a temporary name) is refused or replaced, never written through.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_DIRECTORY = os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted at the name fails the open (or the regular-file check) instead of blocking it.
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_MOST_SECRET_BYTES = 64 * 1024  # a password file: anything larger is not one of ours


class UnsafePathError(OSError):
    """A symlink, or something other than a directory or regular file, where the launcher writes: refused,
    not followed. main() prints it as one line and exits 3."""


def _unsafe(path: Path | str, what: str) -> UnsafePathError:
    # The path goes in the message, not in `filename`: main() then prints it as a sentence, in one line.
    return UnsafePathError(errno.ELOOP, f"{path} {what}: refused (the launcher never writes or reads through a link)")


def _open_component(parent: int, name: str, where: Path, create_mode: int | None, flags: int) -> int:
    for _ in range(3):  # a directory made or removed meanwhile: look again
        try:
            return os.open(name, flags | _DIRECTORY, dir_fd=parent)
        except FileNotFoundError:
            if create_mode is None:
                raise
            try:
                os.mkdir(name, create_mode, dir_fd=parent)
            except FileExistsError:
                pass
        except OSError as error:
            if error.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            raise _unsafe(where, "is a symlink" if stat.S_ISLNK(info.st_mode) else "is not a directory") from None
    raise FileNotFoundError(errno.ENOENT, "keeps disappearing", str(where))


@contextmanager
def open_directory(path: Path, create_mode: int | None = 0o777) -> Iterator[int]:
    """A descriptor of the directory `path`, made as needed (`create_mode`; None: never), every component
    from / down opened without following a symlink. Components above the last are opened O_PATH: they need
    only search permission, as any path lookup does."""
    absolute = Path(os.path.abspath(path))
    descriptor = os.open("/", os.O_PATH | _DIRECTORY)
    try:
        where = Path("/")
        parts = absolute.parts[1:]
        for index, name in enumerate(parts):
            where = where / name
            flags = os.O_RDONLY if index == len(parts) - 1 else os.O_PATH
            child = _open_component(descriptor, name, where, create_mode, flags)
            os.close(descriptor)
            descriptor = child
        yield descriptor
    finally:
        os.close(descriptor)


def ensure_directory(path: Path, mode: int = 0o777) -> None:
    """`path` and its parents exist as real directories (new ones get `mode`, narrowed by the umask)."""
    with open_directory(path, mode):
        pass


def remove_tree(path: Path) -> None:
    """`path` and all below it gone, if it is there; removed inside its parent opened as above, so a link on
    the way is refused, never followed into a directory elsewhere (rmtree itself never follows one below)."""
    try:
        with open_directory(path.parent, create_mode=None) as directory:
            info = os.stat(path.name, dir_fd=directory, follow_symlinks=False)
            if not stat.S_ISDIR(info.st_mode):
                raise _unsafe(path, "is a symlink" if stat.S_ISLNK(info.st_mode) else "is not a directory")
            shutil.rmtree(path.name, dir_fd=directory, ignore_errors=True)  # as before: a leftover is no danger
    except FileNotFoundError:
        return


def _write_new(directory: int, final: str, data: bytes, mode: int) -> None:
    """Into a fresh temporary name, created O_EXCL|O_NOFOLLOW so nothing planted there is opened, then renamed
    over `final`: a link at `final` is replaced by the rename, never written through."""
    for _ in range(100):
        temporary = f".{final}.{secrets.token_hex(6)}.tmp"
        try:
            descriptor = os.open(temporary, _NEW_FILE, mode, dir_fd=directory)
        except FileExistsError:
            continue
        break
    else:
        raise FileExistsError(errno.EEXIST, "no free temporary name", final)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            os.fchmod(handle.fileno(), mode)  # exactly this mode, whatever the umask
        os.rename(temporary, final, src_dir_fd=directory, dst_dir_fd=directory)
    except BaseException:
        try:
            os.unlink(temporary, dir_fd=directory)
        except OSError:
            pass
        raise


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """A file under the state dir, written to a temporary name beside it, then renamed over it. The mode is
    given at creation, so a secret is never readable by others, not even for a moment."""
    with open_directory(path.parent) as directory:
        _write_new(directory, path.name, text.encode(), mode)


def write_private(path: Path, text: str) -> None:
    """For files that hold a secret: readable and writable by their owner only (0600)."""
    write_atomically(path, text, 0o600)


def write_for_container(path: Path, text: str) -> None:
    """For files a container of the docker stack reads as its own user (nobody, 65534): world-readable,
    in a world-readable directory, but under the state dir, whose 0700 keeps other local users out.
    The bind mount hands the container this directory itself, so its ancestors' modes do not apply."""
    with open_directory(path.parent) as directory:
        os.fchmod(directory, 0o755)
        _write_new(directory, path.name, text.encode(), 0o644)


def write_cache_file(path: Path, text: str) -> None:
    """For a cache outside the state dir (~/.cache may well be a link to another disk, which is followed):
    only the file's own name is protected, by the same temporary-then-rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _write_new(directory, path.name, text.encode(), 0o644)
    finally:
        os.close(directory)


def _regular(descriptor: int, path: Path) -> os.stat_result:
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode):
        os.close(descriptor)
        raise _unsafe(path, "is not a regular file")
    return info


def open_for_append(path: Path, mode: int = 0o600, rotate_over: int | None = None) -> BinaryIO:
    """A log under the state dir, opened for appending without following a link at its name (a planted link
    is refused). Over `rotate_over` bytes, it is first renamed to NAME.1 (a rename moves a link, never its
    target)."""
    with open_directory(path.parent) as directory:
        if rotate_over is not None:
            try:
                if os.stat(path.name, dir_fd=directory, follow_symlinks=False).st_size > rotate_over:
                    os.rename(path.name, path.name + ".1", src_dir_fd=directory, dst_dir_fd=directory)
            except FileNotFoundError:
                pass
        try:
            descriptor = os.open(path.name, _APPEND, mode, dir_fd=directory)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise _unsafe(path, "is a symlink") from None
            raise
    _regular(descriptor, path)
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "ab")


def read_private(path: Path) -> str | None:
    """A secret the launcher made earlier (a password file), read without following a link and put back to
    0600 if someone widened it; None when there is none yet."""
    try:
        with open_directory(path.parent, create_mode=None) as directory:
            try:
                descriptor = os.open(path.name, _READ, dir_fd=directory)
            except OSError as error:
                if error.errno == errno.ELOOP:
                    raise _unsafe(path, "is a symlink") from None
                raise
    except FileNotFoundError:
        return None
    info = _regular(descriptor, path)
    with os.fdopen(descriptor, "rb") as handle:
        if stat.S_IMODE(info.st_mode) != 0o600:
            os.fchmod(handle.fileno(), 0o600)
        data = handle.read(_MOST_SECRET_BYTES + 1)
    if len(data) > _MOST_SECRET_BYTES:
        raise UnsafePathError(errno.EFBIG, f"{path} holds over {_MOST_SECRET_BYTES} bytes: not a password file of ours")
    return data.decode("utf-8", errors="replace")
