"""Start-up: seconds from launch to a healthy /health, bare `vllm serve` against serve-with-monitoring,
and for the launcher the seconds until Prometheus holds a first sample from every target.

    python -m bench.startup [--rounds 5] [--kinds bare,launcher]
"""

from __future__ import annotations

import argparse
import json
import statistics

from bench.servers import seconds_until_prometheus_has_every_target, start_bare, start_launcher, tiny_model_dir
from bench.stats import log_round, machine, rotated, summary


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--rounds", type=int, default=5)
    options.add_argument("--kinds", default="bare,launcher")
    args = options.parse_args()
    kinds = args.kinds.split(",")
    model = tiny_model_dir()
    healthy: dict[str, list[float]] = {kind: [] for kind in kinds}
    first_sample: list[float] = []
    for round_index in range(args.rounds):
        for kind in rotated(kinds, round_index):
            server = start_bare(model) if kind == "bare" else start_launcher(model, scrape_interval=5.0)
            try:
                healthy[kind].append(server.wait_healthy())
                if kind == "launcher":
                    first_sample.append(seconds_until_prometheus_has_every_target(server))
            finally:
                server.stop()
            log_round(round=round_index, kind=kind, healthy_s=healthy[kind][-1])
    report = {
        "machine": machine(),
        "rounds": args.rounds,
        "seconds_to_healthy": {kind: summary(values) for kind, values in healthy.items()},
    }
    if first_sample:
        report["launcher_seconds_to_first_sample_from_every_target"] = summary(first_sample)
    if "bare" in healthy and "launcher" in healthy:
        bare, launcher = statistics.median(healthy["bare"]), statistics.median(healthy["launcher"])
        report["launcher_minus_bare_s"] = launcher - bare
        report["launcher_ratio_vs_bare"] = launcher / bare
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
