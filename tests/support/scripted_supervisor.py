"""A real Supervisor with scripted children, run as its own process the way the launcher runs:
`python -m tests.support.scripted_supervisor DIR`. The stop-at-any-moment test signals it at random times.

Its children cover every phase a stop can land in: one slow to start, one whose probes take a while, one
that crashes and waits in backoff, one that fails its checks and ignores SIGTERM (so it is often being
stopped, and a stop must wait out the grace period and kill it).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from launcher.supervision.child_spec import Timing
from launcher.supervision.orphan_guard import OrphanGuard
from launcher.supervision.probe_runner import ProbeRunner
from launcher.supervision.restart_policy import RestartPolicy
from launcher.supervision.supervised_child import SupervisedChild
from launcher.supervision.supervisor import Supervisor
from launcher.supervision.wakeups import Wakeups
from tests.support.scripted_child import ScriptedChild

GRACE_S = 1.0
TIMING = Timing(startup_timeout_s=10, health_interval_s=0.2, health_failures=2, startup_probe_interval_s=0.1)


def main() -> int:
    directory = Path(sys.argv[1])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(created).4f %(message)s")
    wakeups = Wakeups()
    supervisor = Supervisor(directory / "supervisor.json", GRACE_S, guard=OrphanGuard(), wakeups=wakeups)
    supervisor.install_signal_handlers()
    (directory / "signals-handled").touch()  # before this, a signal meets Python's defaults, as any program's
    supervisor.guard.start()
    probes = ProbeRunner(on_done=wakeups.wake)
    children = (
        ScriptedChild(directory, "slow-start", TIMING, name="server", display_name="server", critical=True),
        ScriptedChild(directory, "healthy", TIMING, name="slow-probe", critical=False, probe_delay_s=0.15),
        ScriptedChild(directory, "crash-after", TIMING, name="crasher", critical=False),
        ScriptedChild(directory, "ignore-term-flaky", TIMING, name="stubborn", critical=False),
    )
    for spec in children:
        supervisor.add(SupervisedChild(spec, RestartPolicy(50, 60.0, 0.3, 0.3), supervisor.guard, probes, GRACE_S))
    try:
        return supervisor.run()
    finally:
        supervisor.guard.close()


if __name__ == "__main__":
    sys.exit(main())
