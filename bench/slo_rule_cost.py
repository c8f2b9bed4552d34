"""What the SLO rules cost Prometheus once it holds weeks of data: a real Prometheus over a TSDB backfilled
(`promtool tsdb create-blocks-from openmetrics`) with `--days` of the counters the SLO rules read, scraped
every 5 s, and the 5-minute rates the shipped rules record every minute. Each rule set's error-ratio and
compliance groups run every `--every` (20 s) so that a few minutes give several evaluations; the report scales each
group's `prometheus_rule_group_last_duration_seconds` to its real interval.

The baseline is the SLO rules of an earlier commit (`--baseline-ref`, default d7da42b: every window read
from raw counters), measured in the same run, in alternating order.

    python -m bench.slo_rule_cost [--days 28] [--rounds 2] [--evaluations 5] [--every 20s] [--baseline-ref d7da42b]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.servers import free_port
from bench.stats import log_round, machine, rotated, summary
from launcher.stack.plan import find_prometheus
from launcher.stack.prometheus_child import parse_seconds
from observability.files import SLO_RULES

REPO = Path(__file__).resolve().parent.parent
GROUPS = ("swm-slo-error-ratios", "swm-slo-compliance")  # the ones that read long windows
SCRAPE_S = 5
LAST_DURATION = "prometheus_rule_group_last_duration_seconds"
LAST_EVALUATION = "prometheus_rule_group_last_evaluation_timestamp_seconds"
RAW = 'instance="127.0.0.1:8000",job="vllm",engine="0",model_name="m"'
RECORDED = (("ttft", 0.01, 1.0), ("itl", 0.6, 100.0), ("availability", 0.001, 1.0))  # slo, bad/s, total/s


def write_history(path: Path, days: float, end: int) -> None:
    """One request a second (1 % slow to first token, 1 in 200 scrapes an error), 100 tokens a second."""
    start = end - int(days * 86400)
    ttft = ttft_ok = itl = itl_ok = ok = errors = 0
    with path.open("w") as out:
        for step, at in enumerate(range(start, end + 1, SCRAPE_S)):
            ttft += 5
            ttft_ok += 5 if step % 20 else 4
            itl += 500
            itl_ok += 497
            ok += 5
            errors += 1 if step % 200 == 0 else 0
            out.write(
                f"vllm:time_to_first_token_seconds_count{{{RAW}}} {ttft} {at}\n"
                f'vllm:time_to_first_token_seconds_bucket{{{RAW},le="2.5"}} {ttft_ok} {at}\n'
                f"vllm:inter_token_latency_seconds_count{{{RAW}}} {itl} {at}\n"
                f'vllm:inter_token_latency_seconds_bucket{{{RAW},le="0.3"}} {itl_ok} {at}\n'
            )
            for reason, value in (("stop", ok), ("length", 0), ("abort", 0), ("error", errors)):
                out.write(f'vllm:request_success_total{{{RAW},finished_reason="{reason}"}} {value} {at}\n')
            if at % 60 == 0:
                for slo, bad, total in RECORDED:
                    out.write(f'swm:slo_bad_events:rate5m{{model_name="m",slo="{slo}"}} {bad} {at}\n')
                    out.write(f'swm:slo_total_events:rate5m{{model_name="m",slo="{slo}"}} {total} {at}\n')
        out.write("# EOF\n")


def long_window_groups(rules_text: str, every: str) -> tuple[list[dict], dict[str, float]]:
    groups = [group for group in yaml.safe_load(rules_text)["groups"] if group["name"] in GROUPS]
    intervals = {group["name"]: parse_seconds(group["interval"]) for group in groups}
    return [{**group, "interval": every} for group in groups], intervals


def _group_readings(metrics_text: str) -> dict[str, tuple[float, float]]:
    """group -> (last evaluation's Unix time, its duration in seconds), from Prometheus' own /metrics."""
    found: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name in (LAST_DURATION, LAST_EVALUATION):
            for sample in family.samples:
                group = sample.labels["rule_group"].rsplit(";", 1)[-1]
                found.setdefault(group, {})[family.name] = sample.value
    return {
        group: (values.get(LAST_EVALUATION, 0.0), values.get(LAST_DURATION, 0.0)) for group, values in found.items()
    }


def measure(
    prometheus: Path, tsdb: Path, groups: list[dict], evaluations: int, every: str, work: Path
) -> dict[str, list[float]]:
    """Durations (s) of each group's evaluations after its first (which warms the page cache)."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(tsdb, work / "data")
    (work / "rules.yml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    (work / "prometheus.yml").write_text(yaml.safe_dump({"rule_files": [str(work / "rules.yml")]}))
    port = free_port()
    command = [
        str(prometheus),
        f"--config.file={work / 'prometheus.yml'}",
        f"--storage.tsdb.path={work / 'data'}",
        "--storage.tsdb.retention.time=60d",  # the backfilled blocks must outlive start-up
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    durations: dict[str, list[float]] = {group["name"]: [] for group in groups}
    seen: dict[str, float] = {}
    with (work / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + (evaluations + 2) * parse_seconds(every) + 60
        while min(len(values) for values in durations.values()) < evaluations + 1:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"Prometheus did not evaluate the rules: see {work / 'prometheus.log'}")
            time.sleep(2)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    readings = _group_readings(response.read().decode())
            except OSError:
                continue
            for group, (evaluated_at, duration) in readings.items():
                if group in durations and evaluated_at > 0 and seen.get(group) != evaluated_at:
                    seen[group] = evaluated_at
                    durations[group].append(duration)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {group: values[1:] for group, values in durations.items()}


def baseline_rules(ref: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{ref}:observability/prometheus/rules/slo.yml"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"--baseline-ref {ref}: no SLO rules there ({result.stderr.strip()})")
    return result.stdout


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--days", type=float, default=28.0)
    options.add_argument("--rounds", type=int, default=2)
    options.add_argument("--evaluations", type=int, default=5, help="per group and condition, after a first")
    options.add_argument("--every", default="20s", help="how often each group runs while measured")
    options.add_argument("--baseline-ref", default="d7da42b")
    args = options.parse_args()
    if args.days <= 0 or args.rounds < 1 or args.evaluations < 1:
        options.error("--days must be > 0, --rounds and --evaluations >= 1")
    try:
        parse_seconds(args.every)
    except ValueError:
        options.error(f"--every {args.every}: a Prometheus duration such as 20s")
    prometheus = find_prometheus()
    promtool = prometheus.parent / "promtool" if prometheus else None
    if prometheus is None or promtool is None or not promtool.exists():
        raise SystemExit("needs prometheus and promtool (scripts/setup.sh puts them in the venv)")
    conditions = {"baseline": baseline_rules(args.baseline_ref), "shipped": SLO_RULES.read_text()}
    work = Path(tempfile.mkdtemp(prefix="swm-bench-slo-"))
    try:
        end = int(time.time()) - 3600
        end -= end % 60
        log_round(step="writing history", days=args.days)
        write_history(work / "history.om", args.days, end)
        subprocess.run(
            [str(promtool), "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=720h",
             str(work / "history.om"), str(work / "tsdb")],
            check=True, capture_output=True,
        )  # fmt: skip
        (work / "history.om").unlink()
        durations: dict[str, dict[str, list[float]]] = {name: {} for name in conditions}
        intervals: dict[str, dict[str, float]] = {}
        for round_index in range(args.rounds):
            for name in rotated(list(conditions), round_index):
                groups, intervals[name] = long_window_groups(conditions[name], args.every)
                measured = measure(
                    prometheus, work / "tsdb", groups, args.evaluations, args.every, work / f"run-{name}"
                )
                for group, values in measured.items():
                    durations[name].setdefault(group, []).extend(values)
                log_round(round=round_index, condition=name, **{g: max(v) * 1000 for g, v in measured.items()})
        report: dict[str, object] = {"machine": machine(), "days": args.days, "baseline_ref": args.baseline_ref}
        cost = {}
        for name, groups in durations.items():
            report[name] = {
                f"{group} ms per evaluation": summary([v * 1000 for v in values]) for group, values in groups.items()
            }
            cost[name] = (
                sum(summary(values)["median"] / intervals[name][group] for group, values in groups.items()) * 100
            )
            report[name]["percent_of_one_core_at_real_intervals"] = cost[name]
        report["shipped_vs_baseline"] = cost["shipped"] / cost["baseline"] if cost["baseline"] else None
        print(json.dumps(report, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
