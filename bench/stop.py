"""Stop: seconds from SIGTERM until every process of the tree is gone. Bare `vllm serve` idle (the
baseline), serve-with-monitoring idle, and serve-with-monitoring with 20 streaming requests in flight.
Target: within the grace period + 2 s.

    python -m bench.stop [--rounds 5] [--grace 10] [--cases bare-idle,launcher-idle,launcher-streaming]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
from pathlib import Path

from bench.load import stream_completion
from bench.servers import start_bare, start_launcher, tiny_model_dir
from bench.stats import log_round, machine, rotated, summary


def run_case(case: str, model: Path, grace: float) -> float:
    server = start_bare(model) if case == "bare-idle" else start_launcher(model, scrape_interval=5.0, grace=grace)
    server.wait_healthy()
    if case == "launcher-streaming":
        events = [threading.Event() for _ in range(20)]
        for event in events:
            threading.Thread(target=stream_completion, args=(server.port, event), daemon=True).start()
        for event in events:
            if not event.wait(60):
                raise RuntimeError("a stream did not start")
    return server.stop(timeout=grace + 60)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--rounds", type=int, default=5)
    options.add_argument("--grace", type=float, default=10.0)
    options.add_argument("--cases", default="bare-idle,launcher-idle,launcher-streaming")
    args = options.parse_args()
    cases = args.cases.split(",")
    model = tiny_model_dir()
    seconds: dict[str, list[float]] = {case: [] for case in cases}
    for round_index in range(args.rounds):
        for case in rotated(cases, round_index):
            seconds[case].append(run_case(case, model, args.grace))
            log_round(round=round_index, case=case, stop_s=seconds[case][-1])
    report = {
        "machine": machine(),
        "grace_s": args.grace,
        "target_s": args.grace + 2,
        "stop_s": {case: summary(values) for case, values in seconds.items()},
        "within_target": {case: max(values) <= args.grace + 2 for case, values in seconds.items()},
    }
    if "bare-idle" in seconds:
        baseline = statistics.median(seconds["bare-idle"])
        report["ratio_vs_bare_idle"] = {
            case: statistics.median(values) / baseline for case, values in seconds.items() if case != "bare-idle"
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
