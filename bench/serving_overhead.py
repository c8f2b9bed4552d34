"""Serving overhead: `vllm bench serve` against bare `vllm serve` and against the same server under
serve-with-monitoring with its exporter and Prometheus scraping every 5 s and every 1 s.

    python -m bench.serving_overhead [--rounds 5] [--num-prompts 200]

Conditions alternate round by round (A B C, B C A, C A B, ...), each on a freshly started server. Prints
JSON: per condition the medians with min-max, and each metric as a ratio against bare from the same run.
Under the launcher it also reports the CPU its helpers (the launcher itself, the exporter, Prometheus)
used while `vllm bench serve` ran, in % of one core.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from bench.load import METRICS, vllm_bench
from bench.servers import seconds_until_prometheus_has_every_target, start_bare, start_launcher, tiny_model_dir
from bench.stats import log_round, machine, rotated, summary

CONDITIONS = {"bare": None, "monitored-5s": 5.0, "monitored-1s": 1.0}
HELPERS = ("launcher", "exporter", "prometheus")


def run_condition(name: str, model: Path, num_prompts: int) -> dict[str, float]:
    """The load's metrics, plus for the launcher each helper's CPU during the load, in % of one core."""
    server = start_bare(model) if name == "bare" else start_launcher(model, scrape_interval=CONDITIONS[name])
    try:
        server.wait_healthy()
        if server.prometheus_port:
            seconds_until_prometheus_has_every_target(server)
        vllm_bench(server.base_url, model, num_prompts=min(20, num_prompts))  # warm-up, not measured
        before, started = server.cpu_seconds_by_role(), time.monotonic()
        result = vllm_bench(server.base_url, model, num_prompts=num_prompts)
        after, elapsed = server.cpu_seconds_by_role(), time.monotonic() - started
        for role in HELPERS if server.kind == "launcher" else ():
            if role in after:
                result[f"{role}_cpu_pct"] = 100 * (after[role] - before.get(role, 0.0)) / elapsed
        return result
    finally:
        server.stop()


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--rounds", type=int, default=5)
    options.add_argument("--num-prompts", type=int, default=200)
    options.add_argument("--conditions", default=",".join(CONDITIONS))
    args = options.parse_args()
    conditions = args.conditions.split(",")
    model = tiny_model_dir()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in conditions}
    for round_index in range(args.rounds):
        for name in rotated(conditions, round_index):
            result = run_condition(name, model, args.num_prompts)
            runs[name].append(result)
            log_round(round=round_index, condition=name, **result)
    report = {"machine": machine(), "rounds": args.rounds, "num_prompts": args.num_prompts, "conditions": {}}
    for name, results in runs.items():
        report["conditions"][name] = {metric: summary([r[metric] for r in results]) for metric in METRICS}
        helper_cpu = {role: [r[f"{role}_cpu_pct"] for r in results if f"{role}_cpu_pct" in r] for role in HELPERS}
        if any(helper_cpu.values()):
            report["conditions"][name]["helper_cpu_pct_of_one_core"] = {
                role: summary(values) for role, values in helper_cpu.items() if values
            }
    if "bare" in runs:
        for name in conditions:
            if name == "bare":
                continue
            report["conditions"][name]["ratio_vs_bare"] = {
                metric: statistics.median(r[metric] for r in runs[name])
                / statistics.median(r[metric] for r in runs["bare"])
                for metric in METRICS
            }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
