"""A NOTIFY_SOCKET the test owns: it plays systemd's part and records what the launcher sends."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path


class NotifyListener:
    def __init__(self) -> None:
        # A short path: unix socket paths hold at most 107 bytes.
        self._directory = Path(tempfile.mkdtemp(prefix="swm-notify-"))
        self.path = str(self._directory / "notify.sock")
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(self.path)
        self._socket.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._socket.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append((time.monotonic(), data.decode(errors="replace")))

    def snapshot(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self.messages)

    def fields(self) -> list[tuple[float, str]]:
        """Every KEY=VALUE line as its own entry."""
        return [(when, line) for when, message in self.snapshot() for line in message.splitlines()]

    def wait_for(self, line: str, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for when, found in self.fields():
                if found == line:
                    return when
            time.sleep(0.1)
        raise AssertionError(f"never received {line!r}; got {[f for _, f in self.fields()][-20:]}")

    def close(self) -> None:
        self._stop.set()
        self._socket.close()
        shutil.rmtree(self._directory, ignore_errors=True)
