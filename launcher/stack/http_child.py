"""A supervised helper (exporter, Prometheus, Grafana): a command, and a URL that answers 200 when healthy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from launcher import defaults
from launcher.errors import ARGPARSE_EXIT
from launcher.http_probe import http_status
from launcher.supervision.child_spec import Incident, Probe, Timing
from launcher.supervision.restart_policy import Exit

# Every 10 s, as for Prometheus and Alertmanager: a frozen helper is restarted within about 20 s (three
# misses, a second apart after the first), and Prometheus' own scrapes see it sooner.
HELPER_TIMING = Timing(startup_timeout_s=120.0, health_interval_s=10.0, health_failures=3)
HELPER_NICENESS = 10


@dataclass
class HttpChild:
    name: str
    display_name: str
    command: tuple[str, ...]
    health_urls: tuple[str, ...]  # healthy when every one answers 200
    log_path: Path
    environment: dict[str, str]
    timing: Timing = HELPER_TIMING
    critical: bool = False
    # Monitoring must not take CPU from the model server: helpers run at a lower priority.
    niceness: int = HELPER_NICENESS
    before_start: Callable[[], None] | None = field(default=None, repr=False)
    health_authorization: str | None = field(default=None, repr=False)  # an Authorization header, if needed

    def argv(self) -> tuple[str, ...]:
        return self.command

    def env(self) -> dict[str, str]:
        return dict(self.environment)

    def prepare(self) -> None:
        if self.before_start is not None:
            self.before_start()

    def forget_run(self) -> None:
        pass

    def watched_pids(self, pid: int) -> tuple[int, ...]:
        return ()

    def done_waiting(self, pid: int, now: float) -> str | None:
        return None

    def before_kill(self, pgid: int) -> None:
        pass

    def quick_check(self, pid: int) -> Probe | None:
        return None

    def probe(self, pid: int) -> Probe:
        for url in self.health_urls:
            status = http_status(url, timeout=defaults.HEALTH_TIMEOUT_S, authorization=self.health_authorization)
            if status != 200:
                return Probe(False, f"GET {url}: " + (f"HTTP {status}" if status else "no answer"))
        return Probe(True)

    def engine_report(self) -> None:
        return None

    def fatal_exit_reason(self, exit: Exit) -> str | None:
        if not exit.ever_healthy and exit.code == ARGPARSE_EXIT:
            return f"{self.display_name} rejected its command line (exit 2); see {self.log_path}"
        return None

    def escalation(self, exit: Exit) -> str | None:
        return None

    def record_incident(self, pid: int | None, incident: Incident) -> Path | None:
        return None  # a helper's restart needs no bundle: its log and the status file tell enough

    def became_healthy(self) -> None:
        pass
