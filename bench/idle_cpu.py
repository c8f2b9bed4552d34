"""Idle CPU of each part of the tree: the launcher, the exporter, Prometheus, Alertmanager, and vLLM itself,
over a long idle window after one request, as a share of one core. `--source DIR` runs the launcher from
another checkout (say the commit before a change) with the same venv, for a before/after in one run.

    python -m bench.idle_cpu [--window 600] [--rounds 1] [--settle 30] [--source DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import time

from bench.servers import complete_once, start_launcher, tiny_model_dir
from bench.stats import log_round, machine, summary


def one_window(window: float, source: str | None, settle: float) -> dict[str, float]:
    extra_env = {"PYTHONPATH": source} if source else {}
    server = start_launcher(tiny_model_dir(), scrape_interval=5.0, extra_env=extra_env)
    try:
        server.wait_healthy()
        complete_once(server.base_url)
        time.sleep(settle)  # after start-up and the one request, before measuring
        before = server.cpu_seconds_by_role()
        started = time.monotonic()
        time.sleep(window)
        after = server.cpu_seconds_by_role()
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    return {role: 100 * (after.get(role, 0.0) - before.get(role, 0.0)) / elapsed for role in after}


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--window", type=float, default=600.0)
    options.add_argument("--rounds", type=int, default=1)
    options.add_argument("--settle", type=float, default=30.0, help="seconds after start-up before measuring")
    options.add_argument("--source", default=None, help="a checkout whose launcher/ and observability/ to run")
    args = options.parse_args()
    if args.window <= 0 or args.rounds < 1:
        options.error("--window must be > 0 and --rounds >= 1")
    if args.source and not os.path.isdir(os.path.join(args.source, "launcher")):
        options.error(f"--source {args.source}: no launcher/ there")
    shares: dict[str, list[float]] = {}
    for round_index in range(args.rounds):
        for role, share in one_window(args.window, args.source, args.settle).items():
            shares.setdefault(role, []).append(share)
        log_round(round=round_index, **{role: values[-1] for role, values in shares.items()})
    helpers = [role for role in shares if role not in ("vllm",)]
    print(
        json.dumps(
            {
                "machine": machine(),
                "window_s": args.window,
                "source": args.source or "this checkout",
                "cpu_percent_of_one_core": {role: summary(values) for role, values in shares.items()},
                "helpers_total_percent": summary(
                    [sum(shares[role][i] for role in helpers) for i in range(args.rounds)]
                ),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
