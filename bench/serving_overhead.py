"""Serving overhead: `vllm bench serve` against bare `vllm serve` and against the same server under
serve-with-monitoring with its exporter and Prometheus scraping every 5 s and every 1 s.

    python -m bench.serving_overhead [--rounds 5] [--num-prompts 1000] [--warmup 20]

Conditions alternate round by round (A B C D, B C D A, ...), each on a freshly started server. A second,
independent bare series ("bare-again") is the A/A control: how far two runs of the same bare server
differ on this machine is the noise any overhead is judged against. Prints JSON: per condition the
medians with min-max, each metric as a ratio against bare (of the medians, and per round with the
A/A band), and under the launcher the CPU its helpers (the launcher itself, the exporter, Prometheus)
used while the load ran, in % of one core.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

from bench.load import METRICS, vllm_bench
from bench.servers import seconds_until_prometheus_has_every_target, start_bare, start_launcher, tiny_model_dir
from bench.stats import log_round, machine, rotated, summary

BASELINE = "bare"
CONTROL = "bare-again"
CONDITIONS = {BASELINE: None, CONTROL: None, "monitored-5s": 5.0, "monitored-1s": 1.0}
HELPERS = ("launcher", "exporter", "prometheus")


def run_condition(name: str, model: Path, num_prompts: int, warmup: int) -> dict[str, float]:
    """The load's metrics, plus for the launcher each helper's CPU during the load, in % of one core."""
    interval = CONDITIONS[name]
    server = start_bare(model) if interval is None else start_launcher(model, scrape_interval=interval)
    try:
        server.wait_healthy()
        if server.prometheus_port:
            seconds_until_prometheus_has_every_target(server)
        if warmup:
            vllm_bench(server.base_url, model, num_prompts=warmup)  # not measured
        before, started = server.cpu_seconds_by_role(), time.monotonic()
        result = vllm_bench(server.base_url, model, num_prompts=num_prompts)
        after, elapsed = server.cpu_seconds_by_role(), time.monotonic() - started
        for role in HELPERS if server.kind == "launcher" else ():
            if role in after:
                result[f"{role}_cpu_pct"] = 100 * (after[role] - before.get(role, 0.0)) / elapsed
        return result
    finally:
        server.stop()


def per_round_ratios(runs: dict[str, list[dict[str, float]]], name: str, metric: str) -> list[float]:
    """Each round's value against bare's from the same round: the pairing cancels slow drifts."""
    return [
        run[metric] / base[metric]
        for run, base in zip(runs[name], runs[BASELINE], strict=True)
        if run[metric] and base[metric]
    ]


def compare(runs: dict[str, list[dict[str, float]]], name: str) -> dict[str, dict]:
    comparison: dict[str, dict] = {
        "ratio_vs_bare": {
            metric: statistics.median(r[metric] for r in runs[name]) / base
            for metric in METRICS
            if (base := statistics.median(r[metric] for r in runs[BASELINE]))
        },
        "ratio_per_round": {metric: summary(per_round_ratios(runs, name, metric)) for metric in METRICS},
    }
    if CONTROL in runs and name != CONTROL:
        comparison["a_a_band"], comparison["within_noise"] = {}, {}
        for metric in METRICS:
            control, ratios = per_round_ratios(runs, CONTROL, metric), per_round_ratios(runs, name, metric)
            if not control or not ratios:
                continue  # a metric that came out 0 (no stream produced a second token) has no ratio
            # Two bare series differ by chance in either direction, so the band is symmetric about 1:
            # as wide as the farthest any round of the control strayed from its bare partner.
            spread = max(abs(math.log(ratio)) for ratio in control)
            median = statistics.median(ratios)
            comparison["a_a_band"][metric] = [math.exp(-spread), math.exp(spread)]
            comparison["within_noise"][metric] = abs(math.log(median)) <= spread
    return comparison


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--rounds", type=int, default=5)
    options.add_argument("--num-prompts", type=int, default=1000)
    options.add_argument("--conditions", default=",".join(CONDITIONS))
    options.add_argument("--warmup", type=int, default=20, help="prompts sent before each measured load")
    args = options.parse_args()
    conditions = args.conditions.split(",")
    if not set(conditions) <= CONDITIONS.keys() or BASELINE not in conditions:
        options.error(f"--conditions must include {BASELINE} and name only {', '.join(CONDITIONS)}")
    if args.rounds < 1 or args.num_prompts < 1 or args.warmup < 0:
        options.error("--rounds and --num-prompts must be at least 1, --warmup at least 0")
    model = tiny_model_dir()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in conditions}
    for round_index in range(args.rounds):
        for name in rotated(conditions, round_index):
            result = run_condition(name, model, args.num_prompts, args.warmup)
            runs[name].append(result)
            log_round(round=round_index, condition=name, **result)
    report = {"machine": machine(), "rounds": args.rounds, "num_prompts": args.num_prompts, "conditions": {}}
    for name, results in runs.items():
        entry = {metric: summary([r[metric] for r in results]) for metric in METRICS}
        helper_cpu = {role: [r[f"{role}_cpu_pct"] for r in results if f"{role}_cpu_pct" in r] for role in HELPERS}
        if any(helper_cpu.values()):
            entry["helper_cpu_pct_of_one_core"] = {
                role: summary(values) for role, values in helper_cpu.items() if values
            }
        if name != BASELINE:
            entry.update(compare(runs, name))
        report["conditions"][name] = entry
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
