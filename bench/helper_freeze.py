"""Frozen helpers: seconds from SIGSTOP of the exporter and Prometheus until the launcher has each one
healthy again (a new process), with the default 30 s grace period. Without the continue-before-SIGTERM
step a frozen helper would sit out that whole grace period before being killed.

    python -m bench.helper_freeze [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import signal
import time

import psutil

from bench.servers import start_launcher, tiny_model_dir
from bench.stats import log_round, machine, summary
from launcher.states import read_status

HELPERS = ("exporter", "prometheus")


def _states(server) -> dict:
    status = read_status(server.workdir / "state" / "supervisor.json")
    return {child.name: child for child in status.children} if status else {}


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--rounds", type=int, default=3)
    args = options.parse_args()
    if args.rounds < 1:
        options.error("--rounds must be >= 1")
    seconds: dict[str, list[float]] = {name: [] for name in HELPERS}
    server = start_launcher(tiny_model_dir(), scrape_interval=5.0, grace=30.0)
    try:
        server.wait_healthy()
        for round_index in range(args.rounds):
            deadline = time.monotonic() + 120
            while not all(_states(server).get(n) and _states(server)[n].state == "healthy" for n in HELPERS):
                if time.monotonic() > deadline:
                    raise RuntimeError("helpers not healthy")
                time.sleep(0.25)
            before = {name: _states(server)[name].pid for name in HELPERS}
            frozen = time.monotonic()
            for pid in before.values():
                psutil.Process(pid).send_signal(signal.SIGSTOP)
            done: dict[str, float] = {}
            while len(done) < len(HELPERS):
                if time.monotonic() - frozen > 120:
                    raise RuntimeError(f"not healthy again: {_states(server)}")
                for name, child in _states(server).items():
                    if name in before and name not in done and child.pid != before[name] and child.state == "healthy":
                        done[name] = time.monotonic() - frozen
                time.sleep(0.1)
            for name, value in done.items():
                seconds[name].append(value)
            log_round(round=round_index, **done)
    finally:
        server.stop()
    print(
        json.dumps(
            {
                "machine": machine(),
                "grace_s": 30.0,
                "freeze_to_healthy_again_s": {name: summary(values) for name, values in seconds.items()},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
