"""vLLM 0.32 with streams in flight stops its engine at once, then its HTTP server waits for the clients
to hang up, 30 s and more. The streams were aborted with the engine, so once only the HTTP server has
been left for a moment, the rest of the grace period buys nothing."""

from __future__ import annotations

from collections.abc import Callable

SETTLE_S = 1.0  # an idle vLLM's HTTP server exits within about 0.3 s of its engine
FRONT_END_ONLY = "its engine has stopped and only its front end is left, waiting for clients to hang up; killing it"


class LingeringFrontEnd:
    """While a child stops: has only its front end been left, for long enough to stop waiting for it?"""

    def __init__(self, only_front_end_left: Callable[[int], bool]) -> None:
        self._check = only_front_end_left
        self._since: float | None = None

    def expired(self, pid: int, now: float) -> bool:
        if not self._check(pid):
            self._since = None
            return False
        if self._since is None:
            self._since = now
        return now - self._since >= SETTLE_S
