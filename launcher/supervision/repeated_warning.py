"""A warning that may repeat every few seconds (a full disk, say): said once with its reason, then
counted, and summarised now and then, so the log stays readable and the journal is not flooded."""

from __future__ import annotations

import logging
import time

SUMMARY_EVERY_S = 600.0


class RepeatedWarning:
    def __init__(self, logger: logging.Logger, what: str, summary_every_s: float = SUMMARY_EVERY_S) -> None:
        self._log = logger
        self._what = what
        self._summary_every_s = summary_every_s
        self._count = 0
        self._since = 0.0
        self._next_summary = 0.0

    @property
    def active(self) -> bool:
        return self._count > 0

    def happened(self, reason: object) -> None:
        now = time.monotonic()
        self._count += 1
        if self._count == 1:
            self._since = now
            self._next_summary = now + self._summary_every_s
            self._log.warning(
                "%s: %s (repeats are counted, and summarised every %.0f min)",
                self._what,
                reason,
                self._summary_every_s / 60,
            )
        elif now >= self._next_summary:
            self._next_summary = now + self._summary_every_s
            self._log.warning(
                "%s: still failing, %d times in %.0f min; last: %s",
                self._what,
                self._count,
                (now - self._since) / 60,
                reason,
            )

    def recovered(self) -> None:
        if self._count:
            self._log.info("%s works again, after %d failure(s)", self._what, self._count)
        self._count = 0
