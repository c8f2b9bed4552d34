"""The systemd notify protocol (sd_notify(3)) in a few lines of stdlib."""

from __future__ import annotations

import os
import socket


class SystemdNotifier:
    """Sends READY=1, STATUS=..., WATCHDOG=1 and STOPPING=1 when NOTIFY_SOCKET is set; else does nothing."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # An abstract socket is spelled with a leading '@' and addressed with a leading NUL.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        watchdog_usec = env.get("WATCHDOG_USEC", "")
        watchdog_pid = env.get("WATCHDOG_PID", "")
        applies_to_us = not watchdog_pid or watchdog_pid == str(os.getpid())
        self.watchdog_interval_s: float | None = (
            int(watchdog_usec) / 2_000_000
            if watchdog_usec.isdigit() and int(watchdog_usec) > 0 and applies_to_us
            else None
        )

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, *fields: str) -> None:
        if not self._address:
            return
        message = "\n".join(fields).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self._address)
                sock.sendall(message)
        except OSError:
            pass  # systemd going away must never take the server down

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def stopping(self, status: str) -> None:
        self.notify("STOPPING=1", f"STATUS={status}")
