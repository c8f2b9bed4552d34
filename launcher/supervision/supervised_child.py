"""The state machine for one supervised child: start, probe, restart with backoff, or give up.

The states and their transitions are in launcher/states.py. Nothing here blocks the supervisor: probes
run on their own threads with a deadline, and every stop is a Stop (supervision/stopping.py) advanced
each time the supervisor wakes. wake_at() says when this child next needs attention, wait_fds() what to
sleep on (its main process's pidfd, and those of processes its spec watches).

Probes run on a grid of their interval (multiples of it on the monotonic clock), so the children's probes
fall on the same wakeups; a healthy answer from a healthy child does not wake the supervisor, and is
collected when the next probe is due. Idle, the launcher wakes once per shortest interval.
"""

from __future__ import annotations

import collections
import logging
import os
import select
import signal
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from launcher import defaults
from launcher.errors import ARGPARSE_EXIT, EXIT_GAVE_UP, EXIT_NEEDS_A_PERSON
from launcher.states import FINAL, IncidentNote, State, Transition, transition_allowed
from launcher.supervision.child_process import ChildProcess
from launcher.supervision.child_spec import ChildSpec, Incident, Probe
from launcher.supervision.orphan_guard import OrphanGuard
from launcher.supervision.probe_runner import ProbeRunner, run_with_deadline
from launcher.supervision.restart_policy import Exit, RestartPolicy
from launcher.supervision.stopping import Stop
from launcher.supervision.wakeups import next_on_grid

log = logging.getLogger(__name__)

# A probe is a GET of /health, then perhaps one of /metrics, each with its own timeout; one stuck longer
# than both counts as failed.
_PROBE_DEADLINE_S = 2 * defaults.HEALTH_TIMEOUT_S + 5.0
_STRAGGLER_GRACE_S = 5.0  # after the main process exits on its own, for the rest of its group
_FORGET_TIMEOUT_S = 2.0
_RUNNING = (State.STARTING, State.HEALTHY, State.UNHEALTHY)
_TRANSITIONS_KEPT = 30  # enough to see a crash loop's pattern in a bundle
# Exporter collection, a scrape, the alert groups' evaluation and Alertmanager's group wait, with room to spare.
ESCALATION_LINGER_S = 90.0


@dataclass(frozen=True)
class Outcome:
    """Set when the child has failed for good: why, and the exit code the launcher should end with."""

    message: str
    exit_code: int
    # After which the launcher exits: EXIT_NEEDS_A_PERSON keeps the monitoring up this long first, so that the
    # alert about it goes out through Prometheus and Alertmanager before they stop too.
    linger_s: float = 0.0


def describe_code(code: int | None) -> str:
    if code is None:
        return "was stopped by the launcher"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class SupervisedChild:
    def __init__(
        self,
        spec: ChildSpec,
        policy: RestartPolicy,
        guard: OrphanGuard,
        probes: ProbeRunner,
        grace_period_s: float,
        echo_prefix: str = "",
    ) -> None:
        self.spec = spec
        self._policy = policy
        self._guard = guard
        self._probes = probes
        self._grace = grace_period_s
        self._echo_prefix = echo_prefix
        self.state = State.STOPPED
        self.outcome: Outcome | None = None
        self.process: ChildProcess | None = None
        self.restarts_total = 0
        self.last_exit_code: int | None = None
        self.started_at: float | None = None
        self.ready_at: float | None = None
        self.ever_ready = False
        self.reason = ""  # why it is not healthy, while it is not
        self.failures: collections.Counter[str] = collections.Counter()  # cause -> count
        self.incidents: collections.Counter[str] = collections.Counter()  # reason -> bundles written
        self.last_incident: IncidentNote | None = None
        self.transitions: collections.deque[Transition] = collections.deque(maxlen=_TRANSITIONS_KEPT)
        self._evidence: Path | None = None  # the bundle of the event being handled, named when restarting
        self._run_was_healthy = False
        self._next_start_at = 0.0
        self._next_probe_at = 0.0
        self._next_progress_at = 0.0
        self._misses = 0
        self._pending: Future[Probe] | None = None
        self._probe_sent_at = 0.0
        self._stop: Stop | None = None
        self._after_stop: Exit | None = None  # what the stop under way ends; None for a requested stop
        self._watched: dict[int, int] = {}  # pid the spec watches -> its pidfd
        self._watched_vanished = False  # one was gone before its pidfd could be opened
        self._started_monotonic = 0.0
        self.changed = True  # read and cleared by the supervisor

    # -- lifecycle -------------------------------------------------------------------------------

    def _set_state(self, state: State) -> None:
        if state == self.state:
            return
        if not transition_allowed(self.state, state):
            # Taken all the same: the state follows what the process did, and refusing it would leave the
            # launcher supervising a child it misdescribes. Loud, so that tests fail and users report it.
            log.error(
                "illegal state transition %s -> %s for %s: a bug in the launcher; taking it to keep supervising",
                self.state.name,
                state.name,
                self.spec.display_name,
                stack_info=True,
            )
        self.transitions.append(Transition(time.time(), self.state.value, state.value, self.reason))
        self.state = state
        self.changed = True

    def _record_incident(self, reason: str, detail: str) -> None:
        """The evidence, taken now: before anything is killed, and before the restart it would delay (the spec
        bounds its own time)."""
        pid = self.process.pid if self.process is not None else None
        incident = Incident(reason, detail, time.time(), tuple(self.transitions))
        try:
            bundle = self.spec.record_incident(pid, incident)
        except Exception:  # a broken capture must not cost the restart
            log.exception("taking the incident bundle of %s failed", self.spec.display_name)
            return
        if bundle is None:
            return
        self._evidence = bundle
        self.incidents[reason] += 1
        self.last_incident = IncidentNote(incident.at, reason, str(bundle), detail)
        self.changed = True
        log.warning("%s: incident bundle %s", self.spec.display_name, bundle)

    def start(self, now: float) -> None:
        self.process = ChildProcess(
            self.spec.name,
            self.spec.argv(),
            self.spec.env(),
            self.spec.log_path,
            self._guard,
            echo_prefix=self._echo_prefix,
            niceness=self.spec.niceness,
        )
        try:
            self.spec.prepare()
            self.process.start()
        except OSError as error:
            self.process = None
            self._handle_exit(
                now, Exit(code=127, reason=f"could not start: {error}", ever_healthy=False, cause="could_not_start")
            )
            return
        log.info("started %s (pid %s); log: %s", self.spec.display_name, self.process.pid, self.spec.log_path)
        self.started_at = time.time()
        self._run_was_healthy = False
        self._misses = 0
        self._pending = None
        self._stop = None
        self._next_probe_at = now + self.spec.timing.startup_probe_interval_s
        self._next_progress_at = now + defaults.PROGRESS_EVERY_S
        self._watched_vanished = False
        self.reason = ""
        self._set_state(State.STARTING)
        self._started_monotonic = now

    @property
    def stopped(self) -> bool:
        """Nothing of it runs, and nothing will without a start()."""
        return self.process is None and self._stop is None

    def request_stop(self, now: float, grace_s: float | None = None) -> None:
        """The final stop, begun now and finished by tick(): a restart in progress is abandoned. Safe to
        call again, say with the launcher's own, earlier, deadline."""
        grace = self._grace if grace_s is None else grace_s
        if self._stop is not None:
            self._stop.shorten(now + grace)
            self._after_stop = None
            return
        self._pending = None
        if self.process is None:
            self._finish_requested_stop()
            return
        self._stop = self._begin_stop(now, grace)
        self._after_stop = None
        self._set_state(State.STOPPING)

    def stop(self, grace_s: float | None = None) -> None:
        """The final stop, waited for here: for callers without a supervisor loop (tests, tools)."""
        self.request_stop(time.monotonic(), grace_s)
        while not self.stopped:
            now = time.monotonic()
            self.tick(now)
            time.sleep(max(0.0, min(0.05, self.wake_at(now) - now)))

    def terminate(self) -> None:
        """Safe inside a signal handler: the stop signal goes out now, the rest follows in tick()."""
        if self.process is not None:
            self.process.terminate()

    def kill_now(self) -> None:
        """Safe inside a signal handler: signals the group, leaves reaping to tick()."""
        if self._stop is not None:
            self._stop.kill_now()
        elif self.process is not None:
            self.process.kill_group()

    def _forget_run(self) -> None:
        # Bounded: it may read /proc of processes stuck in the kernel.
        run_with_deadline(lambda _: self.spec.forget_run(), None, timeout=_FORGET_TIMEOUT_S)

    # -- what to sleep on ------------------------------------------------------------------------

    def wait_fds(self) -> list[int]:
        fds = []
        if self.process is not None and self.process.exit_fd is not None:
            fds.append(self.process.exit_fd)
        if self.state in (State.HEALTHY, State.UNHEALTHY):
            fds.extend(self._watched.values())
        return fds

    def wake_at(self, now: float) -> float:
        """When this child next needs a tick, at the latest (a pidfd or a finished probe may come first)."""
        if self._stop is not None:
            return self._stop.wake_at(now)
        if self.state == State.BACKOFF:
            return self._next_start_at
        if self.state not in _RUNNING:
            return float("inf")
        if self._pending is not None and now >= self._next_probe_at:
            due = self._probe_sent_at + _PROBE_DEADLINE_S  # late: its end wakes the loop, or the deadline
        else:
            due = self._next_probe_at
        if self.state == State.STARTING:
            due = min(due, self._next_progress_at, self._started_monotonic + self.spec.timing.startup_timeout_s)
        return due

    def _sync_watched(self) -> None:
        """pidfds for the processes the spec watches (vLLM's engines): their exit wakes the supervisor."""
        pid = self.process.pid if self.process is not None else None
        wanted = set(self.spec.watched_pids(pid)) if pid is not None and self.state in _RUNNING else set()
        for gone in set(self._watched) - wanted:
            os.close(self._watched.pop(gone))
        for new in wanted - set(self._watched):
            try:
                self._watched[new] = os.pidfd_open(new)
            except OSError:
                self._watched_vanished = True  # already gone: quick_check says what that means

    def _watched_exited(self) -> bool:
        """Has a watched process exited since? One poll of their pidfds, no reads of /proc."""
        if self._watched_vanished:
            return True
        if not self._watched:
            return False
        poller = select.poll()
        for fd in self._watched.values():
            poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))

    # -- the tick --------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        if self._stop is not None:
            self._continue_stopping(now)
            return
        if self.state == State.STOPPED or self.state in FINAL:
            return
        if self.state == State.BACKOFF:
            if now >= self._next_start_at:
                self.start(now)
            return
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            self._on_exit(now, code)
            return
        if self.state in (State.HEALTHY, State.UNHEALTHY) and self._watched_exited():
            pid = self.process.pid
            quick = self.spec.quick_check(pid) if pid is not None else None
            if quick is not None and not quick.healthy:
                self._fail_run(now, quick.detail, quick.cause)
                return
        self._collect_probe(now)
        if self.state == State.STARTING and self.process is not None:
            self._check_startup_deadline(now)
        if self.state in _RUNNING and self.process is not None:
            if self._pending is None and now >= self._next_probe_at:
                pid = self.process.pid
                assert pid is not None
                self._pending = self._probes.submit(self.spec.probe, pid, wake_if=self._worth_waking_for)
                self._probe_sent_at = now
                self._next_probe_at = next_on_grid(now, self._probe_interval())
        self._sync_watched()

    def _probe_interval(self) -> float:
        timing = self.spec.timing
        return timing.startup_probe_interval_s if self.state == State.STARTING else timing.health_interval_s

    def _worth_waking_for(self, probe: Probe) -> bool:
        """On the probe's thread: anything but a healthy answer from a healthy child, or a late one."""
        return not (probe.healthy and self.state == State.HEALTHY) or time.monotonic() >= self._next_probe_at

    def _check_startup_deadline(self, now: float) -> None:
        elapsed = now - self._started_monotonic
        if elapsed >= self.spec.timing.startup_timeout_s:
            self._fail_run(
                now, f"did not become healthy within {self.spec.timing.startup_timeout_s:.0f} s", "startup_timeout"
            )
            return
        if now >= self._next_progress_at:
            self._next_progress_at = now + defaults.PROGRESS_EVERY_S
            assert self.process is not None
            log.info(
                "waiting for %s to become healthy: %.0f s elapsed (timeout %.0f s); last output: %s",
                self.spec.display_name,
                elapsed,
                self.spec.timing.startup_timeout_s,
                self.process.last_meaningful_line()[:200],
            )
            self.changed = True

    def _take_probe(self, now: float) -> Probe | None:
        if self._pending is None:
            return None
        if not self._pending.done():
            if now - self._probe_sent_at < _PROBE_DEADLINE_S:
                return None
            self._pending = None  # abandoned: its thread may stay stuck, the loop does not
            return Probe(False, f"the health probe did not finish within {_PROBE_DEADLINE_S:.0f} s")
        future, self._pending = self._pending, None
        try:
            return future.result()
        except Exception as error:  # noqa: BLE001 - a broken probe is a failed probe
            return Probe(False, f"the health probe failed: {type(error).__name__}: {error}")

    def _collect_probe(self, now: float) -> None:
        probe = self._take_probe(now)
        if probe is None:
            return
        log.debug("%s probe: healthy=%s %s", self.spec.display_name, probe.healthy, probe.detail)
        if probe.healthy:
            self._misses = 0
            if self.state != State.HEALTHY:
                self._became_healthy(now)
                self._next_probe_at = next_on_grid(now, self.spec.timing.health_interval_s)
            return
        if self.state == State.STARTING:
            return  # not up yet; the start-up deadline decides
        self._misses += 1
        self.reason = probe.detail
        self._set_state(State.UNHEALTHY)
        # After a miss, probe again within a second: N misses in a row then take seconds, not minutes.
        self._next_probe_at = now + min(self.spec.timing.health_interval_s, 1.0)
        if probe.immediate or self._misses >= self.spec.timing.health_failures:
            what = probe.detail if probe.immediate else f"{self._misses} failed health checks ({probe.detail})"
            self._fail_run(now, what, probe.cause, stalled=probe.stalled)
        else:
            log.warning(
                "%s health check failed (%d of %d): %s",
                self.spec.display_name,
                self._misses,
                self.spec.timing.health_failures,
                probe.detail,
            )

    def _became_healthy(self, now: float) -> None:
        first = not self._run_was_healthy
        self._run_was_healthy = True
        self.ever_ready = True
        self.ready_at = time.time()
        if first:
            log.info("%s is healthy after %.1f s", self.spec.display_name, now - self._started_monotonic)
        else:
            log.info("%s is healthy again", self.spec.display_name)
        self.reason = ""
        self._set_state(State.HEALTHY)
        self.spec.became_healthy()

    # -- stopping --------------------------------------------------------------------------------

    def _begin_stop(self, now: float, grace: float) -> Stop:
        assert self.process is not None
        self._pending = None
        return Stop(
            self.process,
            grace,
            now,
            self.spec.display_name,
            done_waiting=self.spec.done_waiting,
            before_kill=self.spec.before_kill,
        )

    def _continue_stopping(self, now: float) -> None:
        assert self._stop is not None
        if not self._stop.advance(now):
            return
        stop, self._stop = self._stop, None
        if self.last_exit_code is None or stop.exit_code is not None:
            self.last_exit_code = stop.exit_code if stop.exit_code is not None else self.last_exit_code
        self.process = None
        self._sync_watched()
        self._forget_run()
        after, self._after_stop = self._after_stop, None
        if after is None:
            self._finish_requested_stop()
        else:
            self._handle_exit(now, after)

    def _finish_requested_stop(self) -> None:
        if self.state not in FINAL:
            self._set_state(State.STOPPED)

    # -- failures --------------------------------------------------------------------------------

    def _fail_run(self, now: float, reason: str, cause: str, stalled: bool = False) -> None:
        """The child is alive but judged failed: stop it (over the next ticks), then treat it like an exit."""
        assert self.process is not None
        tail = self.process.last_meaningful_line()
        log.warning("%s %s; stopping it", self.spec.display_name, reason)
        self._record_incident(cause, reason)
        exit = Exit(code=None, reason=f"{reason}; last output: {tail}", ever_healthy=self._run_was_healthy, cause=cause)
        self._stop_for_restart(now, exit, self._grace, State.STALLED if stalled else State.STOPPING)

    def _on_exit(self, now: float, code: int) -> None:
        assert self.process is not None
        tail = self.process.last_meaningful_line()
        self.last_exit_code = code
        uptime = now - self._started_monotonic
        reason = f"{describe_code(code)} after {uptime:.0f} s"
        if not self._run_was_healthy:
            reason += " without becoming healthy"
        exit = Exit(code=code, reason=f"{reason}; last output: {tail}", ever_healthy=self._run_was_healthy)
        self._record_incident(exit.cause, f"{self.spec.display_name} {reason}")
        # Whatever is left of its group (an EngineCore, say) gets a short grace, then goes too.
        self._stop_for_restart(now, exit, min(self._grace, _STRAGGLER_GRACE_S), State.STOPPING)

    def _stop_for_restart(self, now: float, exit: Exit, grace: float, state: State) -> None:
        self._stop = self._begin_stop(now, grace)
        self._after_stop = exit
        self.reason = exit.reason.split("; last output: ", 1)[0]
        self._set_state(state)

    def _handle_exit(self, now: float, exit: Exit) -> None:
        self.failures[exit.cause] += 1
        self.reason = exit.reason.split("; last output: ", 1)[0]
        fatal = self.spec.fatal_exit_reason(exit)
        if fatal:
            self._give_up(fatal, ARGPARSE_EXIT if exit.code == ARGPARSE_EXIT else EXIT_GAVE_UP)
            return
        escalation = self.spec.escalation(exit)
        if escalation:
            self._escalate(escalation)
            return
        if self._policy.same_failure_twice(exit):
            self._give_up(
                f"{self.spec.display_name} {describe_code(exit.code)} twice without becoming healthy: "
                f"a configuration error, not worth retrying. {exit.reason.split('; ', 1)[-1]}. "
                f"Full log: {self.spec.log_path}",
                EXIT_GAVE_UP,
            )
            return
        if not self._policy.may_restart(now):
            self._give_up(
                f"{self.spec.display_name} failed {self._policy.restarts_in_window(now) + 1} times within "
                f"{self._policy.window_s:.0f} s (--max-restarts {self._policy.max_restarts}); giving up. "
                f"Last: {exit.reason}. Full log: {self.spec.log_path}",
                EXIT_GAVE_UP,
            )
            return
        delay = self._policy.backoff_s(now)
        self._policy.record_restart(now)
        self.restarts_total += 1
        evidence, self._evidence = self._evidence, None
        log.warning(
            "%s %s; restarting in %.0f s (restart %d of %d allowed within %.0f s)%s",
            self.spec.display_name,
            exit.reason,
            delay,
            self._policy.restarts_in_window(now),
            self._policy.max_restarts,
            self._policy.window_s,
            f"; evidence in {evidence}" if evidence else "",
        )
        self._next_start_at = now + delay
        self._set_state(State.BACKOFF)

    def _give_up(self, message: str, exit_code: int) -> None:
        self._evidence = None
        self._record_incident("gave_up", message)
        if self._evidence is not None:
            message += f" Evidence in {self._evidence}"
        log.error("%s", message)
        self.outcome = Outcome(message, exit_code)
        self._set_state(State.FAILED)

    def _escalate(self, why: str) -> None:
        """Restarting cannot help: no restart, a bundle, the gpu-failed state, and the launcher's exit 4."""
        self._evidence = None
        self.reason = why
        self._record_incident("gpu_failed", why)
        message = (
            f"{self.spec.display_name} is not restarted: {why}. A person must act: reset the GPU "
            "(nvidia-smi --gpu-reset, or a reboot) or drain the node"
            + (f". Evidence in {self._evidence}" if self._evidence else "")
        )
        log.critical("%s", message)
        self.outcome = Outcome(message, EXIT_NEEDS_A_PERSON, linger_s=ESCALATION_LINGER_S)
        self._set_state(State.GPU_FAILED)
