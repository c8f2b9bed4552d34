"""vLLM as a supervised child: its command, its scratch space, and how to tell it is healthy."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import threading
import time
from dataclasses import replace
from pathlib import Path

import psutil

from launcher import defaults
from launcher.errors import ARGPARSE_EXIT
from launcher.http_probe import http_get_text, http_status
from launcher.incidents.capture import Evidence, IncidentRecorder
from launcher.incidents.gpu_health import GpuHealth
from launcher.states import EngineReport
from launcher.supervision.child_spec import Incident, Probe, Timing
from launcher.supervision.orphan_guard import OrphanGuard
from launcher.supervision.process_groups import live_pids
from launcher.supervision.restart_policy import Exit
from launcher.supervision.shared_memory_files import orphaned_since, shared_memory_of, unlink_all
from launcher.vllm_server.canary import Canary, CompletionSender
from launcher.vllm_server.command import VllmInvocation
from launcher.vllm_server.lingering_front_end import FRONT_END_ONLY, LingeringFrontEnd
from launcher.vllm_server.metric_drift import missing_names, watched_vllm_names
from launcher.vllm_server.metrics_page import MetricsPage, parse_metrics_page
from launcher.vllm_server.progress import ProgressWatch, read_interval

log = logging.getLogger(__name__)

ENGINE_PROCESS_PREFIX = "VLLM::EngineCore"
_SHARED_MEMORY_LOOK_EVERY_S = 600.0  # a look reads every vLLM process' /proc maps: ~5 ms of CPU


def _fresh_private_dir(directory: Path) -> None:
    """An empty directory only we can use. The IPC dir may sit in /tmp under a predictable name, so one
    that is a symlink or belongs to someone else is refused rather than emptied and used."""
    try:
        info = directory.lstat()
    except FileNotFoundError:
        info = None
    if info is not None and (stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid()):
        raise OSError(f"{directory} exists and is not ours (a symlink, or another user's); remove it")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def engine_core_pids(api_server_pid: int) -> set[int]:
    """vLLM names its engine processes with setproctitle, so they show in /proc/PID/cmdline."""
    try:
        children = psutil.Process(api_server_pid).children(recursive=True)
    except psutil.Error:
        return set()
    found = set()
    for child in children:
        try:
            if " ".join(child.cmdline()).startswith(ENGINE_PROCESS_PREFIX):
                found.add(child.pid)
        except psutil.Error:
            continue
    return found


class VllmChild:
    name = "vllm"
    display_name = "vLLM"
    critical = True
    niceness = 0

    def __init__(
        self,
        invocation: VllmInvocation,
        timing: Timing,
        log_path: Path,
        guard: OrphanGuard,
        stall_timeout_s: float = defaults.STALL_TIMEOUT_S,
        watched_metrics: frozenset[str] | None = None,
        canary_interval_s: float = 0.0,
        max_stall_restarts: int = defaults.MAX_STALL_RESTARTS,
        recorder: IncidentRecorder | None = None,
        gpu_health: GpuHealth | None = None,
    ) -> None:
        self.invocation = invocation
        self.timing = timing
        self.log_path = log_path
        self._guard = guard
        self._lock = threading.Lock()
        self._engines: dict[int, set[int]] = {}  # API server pid -> engine pids seen while healthy
        self._shared_memory: set[Path] = set()
        self._run_started_at = time.time()
        self._progress = ProgressWatch(stall_timeout_s)
        self._watched_metrics = watched_vllm_names() if watched_metrics is None else watched_metrics
        self._missing_metrics: list[str] | None = None  # None until a served request made every name appear
        self._reported_asleep = False
        self._lingering: LingeringFrontEnd | None = None
        self._lingering_pid: int | None = None
        self._next_shared_memory_look = 0.0
        self._progress_read_every = read_interval(stall_timeout_s, timing.health_interval_s)
        self._next_progress_read = 0.0
        # vLLM checks the key on /v1 only today; sent anyway, so a vLLM that guards more still answers.
        key = invocation.target.api_key
        self._authorization = f"Bearer {key}" if key else None
        self._recorder = recorder
        self._gpu_health = gpu_health
        self._max_stall_restarts = max_stall_restarts
        self._last_page: tuple[str, float] | None = None  # the last /metrics text read, and when
        self._run_finished_requests = False
        self._last_run_finished_requests = False
        self._previous_was_stall = False
        self._stalls_in_a_row = 0  # stall restarts whose next run stalled again before finishing a request
        # Without stall detection a canary could not be judged: it is off then.
        sender = CompletionSender(
            invocation.target.base_url,
            invocation.target.model_name or "",
            self._authorization,
            timeout_s=stall_timeout_s + defaults.HEALTH_TIMEOUT_S,
        )
        self._canary = Canary(sender, canary_interval_s if stall_timeout_s > 0 else 0.0)

    def argv(self) -> tuple[str, ...]:
        return self.invocation.argv

    def env(self) -> dict[str, str]:
        return dict(self.invocation.env)

    def prepare(self) -> None:
        self._run_started_at = time.time()
        self._next_shared_memory_look = 0.0
        self._next_progress_read = 0.0
        # A stale multiproc dir or leftover sockets from a killed run break the next one.
        for directory in (self.invocation.scratch, self.invocation.ipc_dir, self.invocation.multiproc_dir):
            if directory is not None:
                _fresh_private_dir(directory)
        (self.invocation.scratch / "tmp").mkdir(parents=True, exist_ok=True)
        if not self.invocation.ipc_dir.is_relative_to(self.invocation.scratch):
            self._guard.watch_file(str(self.invocation.ipc_dir))  # the /tmp fallback: removed if we are killed
        self._guard.sweep_shared_memory_since(self._run_started_at)

    def _note_shared_memory(self, pgid: int) -> None:
        found = shared_memory_of(live_pids(pgid))
        with self._lock:
            new = found - self._shared_memory
            self._shared_memory |= new
        for path in new:
            self._guard.watch_file(str(path))

    def before_kill(self, pgid: int) -> None:
        self._note_shared_memory(pgid)  # segments made since the last probe, during the shutdown say

    def forget_run(self) -> None:
        """Runs once the process group is gone: nothing maps its shared memory any more."""
        with self._lock:
            self._engines.clear()
            leftovers, self._shared_memory = self._shared_memory, set()
            self._progress.reset()
            self._missing_metrics = None
            self._reported_asleep = False
            self._last_run_finished_requests, self._run_finished_requests = self._run_finished_requests, False
        self._canary.reset()
        removed = unlink_all(leftovers | set(orphaned_since(self._run_started_at)))
        if removed:
            log.info("removed %d shared memory file(s) the stopped vLLM left in /dev/shm", len(removed))
        for path in leftovers:
            self._guard.forget_file(str(path))
        shutil.rmtree(self.invocation.scratch, ignore_errors=True)
        shutil.rmtree(self.invocation.ipc_dir, ignore_errors=True)
        self._guard.forget_file(str(self.invocation.ipc_dir))
        self._guard.forget_sweep()

    def quick_check(self, pid: int) -> Probe | None:
        """The engine processes seen while healthy, still there? The API server notices a dead EngineCore
        only seconds later, and may exit 0 without saying why; this names the cause at once."""
        with self._lock:
            known = tuple(self._engines.get(pid, ()))
        gone = [engine for engine in known if not _running(engine)]
        if gone:
            return Probe(
                False, f"lost its EngineCore (pid {', '.join(map(str, gone))})", immediate=True, cause="engine_lost"
            )
        return None

    def watched_pids(self, pid: int) -> tuple[int, ...]:
        with self._lock:
            return tuple(self._engines.get(pid, ()))

    def done_waiting(self, pid: int, now: float) -> str | None:
        if self._lingering is None or self._lingering_pid != pid:
            self._lingering, self._lingering_pid = LingeringFrontEnd(self._only_front_end_left), pid
        return FRONT_END_ONLY if self._lingering.expired(pid, now) else None

    def _only_front_end_left(self, pid: int) -> bool:
        if not _running(pid):
            return False
        with self._lock:
            known = tuple(self._engines.get(pid, ()))
        if known:
            return not any(_running(engine) for engine in known)
        return not engine_core_pids(pid)  # stopped before a probe saw it healthy: look (a walk of /proc)

    def probe(self, pid: int) -> Probe:
        now = time.monotonic()
        if now >= self._next_shared_memory_look:
            # Its segments are made at start-up: one look once it is healthy (below), one now and then,
            # and one just before a kill suffice.
            self._next_shared_memory_look = now + _SHARED_MEMORY_LOOK_EVERY_S
            self._note_shared_memory(pid)
        with self._lock:
            known = set(self._engines.get(pid, set()))
        status = http_status(
            self.invocation.target.base_url + "/health", defaults.HEALTH_TIMEOUT_S, self._authorization
        )
        if status != 200:
            return Probe(False, "GET /health: " + (f"HTTP {status}" if status else "no answer"))
        if not known:
            engines = engine_core_pids(pid)
            if engines:
                with self._lock:
                    self._engines[pid] = engines
                self._note_shared_memory(pid)  # first healthy: the segments vLLM makes at start-up exist now
        if now < self._next_progress_read:
            return Probe(True)
        # Half a probe interval early: probes run on a grid, and the probe at the grid point where the
        # read falls due, a few milliseconds late, must take it rather than leave it to the next one.
        self._next_progress_read = now + self._progress_read_every - self.timing.health_interval_s / 2
        return self._watch_progress()

    # -- progress, from vLLM's own /metrics ------------------------------------------------------

    def _watch_progress(self) -> Probe:
        with self._lock:
            drift_checked = self._missing_metrics is not None
        if not self._progress.enabled and drift_checked:
            return Probe(True)
        text = http_get_text(
            self.invocation.target.base_url + "/metrics", defaults.HEALTH_TIMEOUT_S, self._authorization
        )
        page = parse_metrics_page(text, with_names=not drift_checked) if text is not None else None
        if page is None:
            log.debug("vLLM's /metrics could not be read; no verdict on progress this time")
        else:
            assert text is not None
            if not drift_checked:
                self._check_drift(page)
            self._canary.observe(page, time.monotonic())
        with self._lock:
            if page is not None:
                self._last_page = (text or "", time.time())
                self._run_finished_requests |= page.requests_finished > 0
            verdict = self._progress.observe(page, time.monotonic(), time.time(), self._canary.pending_engines())
        if verdict.stalled:
            return Probe(False, "stalled: " + verdict.detail, immediate=True, cause="stalled", stalled=True)
        if verdict.asleep_with_work and not self._reported_asleep:
            log.warning("vLLM has %s: sleep mode, not a stall; it is not restarted", verdict.detail)
        self._reported_asleep = verdict.asleep_with_work
        return Probe(True)

    def _check_drift(self, page: MetricsPage) -> None:
        """Once per run, after its first finished request: before that, some histograms have no series."""
        if page.requests_finished <= 0:
            return
        missing = missing_names(self._watched_metrics, page.names)
        with self._lock:
            self._missing_metrics = missing
        if missing:
            log.warning(
                "the running vLLM does not export %d metric(s) the shipped dashboards and alerts use "
                "(renamed or removed in this version?): %s",
                len(missing),
                ", ".join(missing),
            )
        else:
            log.info(
                "every vLLM metric the dashboards and alerts use is exported (%d names)", len(self._watched_metrics)
            )

    def engine_report(self) -> EngineReport:
        with self._lock:
            summary = self._progress.summary()
            missing = None if self._missing_metrics is None else list(self._missing_metrics)
        canary = self._canary.report()
        known = EngineReport(
            stall_timeout_s=self._progress.stall_timeout_s,
            missing_metrics=missing,
            canary_interval_s=self._canary.interval_s,
            canaries_ok=canary.ok,
            canaries_failed=canary.failed,
            canary_last_at=canary.last_at,
            canary_last_latency_s=canary.last_latency_s,
            canary_last_outcome=canary.last_outcome,
        )
        if summary is None:
            return known
        return replace(
            known,
            checked_at=summary.checked_at,
            last_progress_at=summary.last_progress_at,
            last_token_at=summary.last_token_at,
            running=summary.running,
            waiting=summary.waiting,
            asleep=summary.asleep,
        )

    # -- incidents and escalation ----------------------------------------------------------------

    def record_incident(self, pid: int | None, incident: Incident) -> Path | None:
        if self._recorder is None:
            return None
        with self._lock:
            page = self._last_page
        evidence = Evidence(
            root_pid=pid if pid is not None and _running(pid) else None,
            group_pids=live_pids(pid) if pid is not None else [],
            metrics_page=page[0] if page else None,
            metrics_read_at=page[1] if page else None,
        )
        return self._recorder.record(incident, evidence)

    def became_healthy(self) -> None:
        if self._recorder is not None:
            self._recorder.mark_healthy_again(time.time())

    def escalation(self, exit: Exit) -> str | None:
        """Stall after stall with nothing finished in between, or a GPU that needs a reset: restarting won't help."""
        if exit.cause == "stalled":
            again = self._previous_was_stall and not self._last_run_finished_requests
            self._stalls_in_a_row = self._stalls_in_a_row + 1 if again else 0
            self._previous_was_stall = True
            if 0 < self._max_stall_restarts <= self._stalls_in_a_row:
                return (
                    f"vLLM stalled again after {self._stalls_in_a_row} stall restart(s) in a row without finishing "
                    "a request (--max-stall-restarts): a hang that survives restarts, such as a wedged GPU or "
                    "NCCL communicator"
                )
        else:
            self._previous_was_stall = False
            self._stalls_in_a_row = 0
        return self._gpu_health.needs_a_person() if self._gpu_health is not None else None

    def fatal_exit_reason(self, exit: Exit) -> str | None:
        if not exit.ever_healthy and exit.code == ARGPARSE_EXIT:
            return "vLLM rejected its command line (exit 2); its own message is above"
        return None
