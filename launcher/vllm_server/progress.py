"""Judges, from successive readings of vLLM's /metrics, whether its engines still make progress.

/health only says the API server answers; a frozen EngineCore (a CUDA or NCCL hang, a deadlocked
scheduler) leaves it answering 200 while nothing moves. An engine is stalled when it has work pending
(running + waiting > 0) and nothing it reports has moved for the stall timeout. A reading that could
not be taken decides nothing, and a sleeping engine (sleep mode) is reported, never judged stalled.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass

from launcher.vllm_server.metrics_page import GENERATION_TOKENS, EngineReading, MetricsPage


@dataclass(frozen=True)
class ProgressVerdict:
    stalled: bool = False
    asleep_with_work: bool = False
    detail: str = ""


@dataclass
class _EngineTrack:
    signature: tuple[float | None, ...]
    generation_tokens: float
    last_progress_at: float  # monotonic: idle, or something moved
    last_progress_wall: float
    last_token_wall: float | None
    watched_since_wall: float


@dataclass(frozen=True)
class ProgressSummary:
    """The latest view over every engine, for the status file."""

    checked_at: float  # wall clock of the last reading
    last_progress_at: float  # wall clock: the oldest engine's last sign of life
    last_token_at: float | None
    running: float
    waiting: float
    asleep: bool


READS_PER_STALL_TIMEOUT = 6
LONGEST_READ_INTERVAL_S = 30.0


def read_interval(stall_timeout_s: float, probe_interval_s: float) -> float:
    """How often /metrics is worth reading: a few times per stall timeout, so a stall is seen within a
    sixth of the timeout after it is due, but never more often than the probe runs. Each read costs the
    launcher about a millisecond and vLLM's API server a page render."""
    if stall_timeout_s <= 0:
        return probe_interval_s
    return max(probe_interval_s, min(stall_timeout_s / READS_PER_STALL_TIMEOUT, LONGEST_READ_INTERVAL_S))


def clock_time(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall))


class ProgressWatch:
    def __init__(self, stall_timeout_s: float) -> None:
        self.stall_timeout_s = stall_timeout_s
        self._tracks: dict[str, _EngineTrack] = {}
        self._summary: ProgressSummary | None = None

    @property
    def enabled(self) -> bool:
        return self.stall_timeout_s > 0

    def reset(self) -> None:
        """A new run of vLLM: what the last one reported says nothing about this one."""
        self._tracks.clear()
        self._summary = None

    def summary(self) -> ProgressSummary | None:
        return self._summary

    def observe(
        self, page: MetricsPage | None, now: float, wall: float, canaries_pending: Collection[str] = ()
    ) -> ProgressVerdict:
        """`canaries_pending`: the engines the launcher's own canary request is in flight to, which the gauges
        of a frozen engine cannot show: it counts as pending work there."""
        if page is None:
            return ProgressVerdict()  # /metrics unreadable: that alone is not a stall
        named = len(page.engines) > 1
        verdicts = [
            self._observe_engine(reading, now, wall, named, reading.engine in canaries_pending)
            for reading in page.engines.values()
        ]
        self._summarise(page, wall)
        return next((v for v in verdicts if v.stalled), None) or next(
            (v for v in verdicts if v.asleep_with_work), ProgressVerdict()
        )

    def _observe_engine(
        self, reading: EngineReading, now: float, wall: float, named: bool, canary_pending: bool
    ) -> ProgressVerdict:
        signature = reading.signature()
        tokens = reading.value(GENERATION_TOKENS)
        track = self._tracks.get(reading.engine)
        if track is None:
            self._tracks[reading.engine] = _EngineTrack(signature, tokens, now, wall, None, wall)
            return ProgressVerdict()
        if tokens != track.generation_tokens:
            track.last_token_wall = wall
            track.generation_tokens = tokens
        moved = signature != track.signature
        track.signature = signature
        # Idle is fine, and so is asleep: the timeout counts from the moment work waits on an awake engine.
        pending = reading.pending or canary_pending
        if moved or not pending or reading.asleep:
            track.last_progress_at = now
            track.last_progress_wall = wall
        if reading.asleep and reading.pending:
            where = f" on engine {reading.engine}" if named else ""
            return ProgressVerdict(
                asleep_with_work=True, detail=f"{self._work(reading)}{where} while the engine sleeps"
            )
        still_for = now - track.last_progress_at
        if not self.enabled or still_for < self.stall_timeout_s:
            return ProgressVerdict()
        if track.last_token_wall is not None:
            token = f"last token at {clock_time(track.last_token_wall)}"
        else:
            token = f"no token since {clock_time(track.watched_since_wall)}"
        where = f" on engine {reading.engine}" if named else ""
        canary = "" if reading.pending else " and the launcher's canary request pending"
        detail = f"no progress{where} for {still_for:.0f} s with {self._work(reading)}{canary}; {token}"
        return ProgressVerdict(stalled=True, detail=detail)

    @staticmethod
    def _work(reading: EngineReading) -> str:
        return f"{reading.running:.0f} running, {reading.waiting:.0f} waiting"

    def _summarise(self, page: MetricsPage, wall: float) -> None:
        tracks = [self._tracks[engine] for engine in page.engines if engine in self._tracks]
        if not tracks:
            return
        tokens = [track.last_token_wall for track in tracks if track.last_token_wall is not None]
        self._summary = ProgressSummary(
            checked_at=wall,
            last_progress_at=min(track.last_progress_wall for track in tracks),
            last_token_at=max(tokens) if tokens else None,
            running=sum(reading.running for reading in page.engines.values()),
            waiting=sum(reading.waiting for reading in page.engines.values()),
            asleep=any(reading.asleep for reading in page.engines.values()),
        )
