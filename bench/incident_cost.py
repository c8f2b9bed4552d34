"""What the evidence costs. Capture: seconds the launcher spends taking an incident bundle of a hung engine
(SIGSTOPped EngineCore, streams in flight), read from each bundle's summary.json, and their share of the time
from the freeze until a new vLLM answers /health. Canary: CPU of the launcher and of vLLM's API server (and
its EngineCore, which runs each canary's step) over idle windows with the canary on and off, alternating, in
the same run.

    python -m bench.incident_cost [--rounds 5] [--stall-timeout 10] [--streams 8]
                                  [--cost-rounds 3] [--cost-window 120] [--canary-interval 60] [--settle 15]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import psutil

from bench.restart import engine_core
from bench.servers import Server, complete_once, start_launcher, tiny_model_dir
from bench.stall_recovery import _one_freeze
from bench.stats import log_round, machine, rotated, summary


def _newest_summary(server: Server, known: set[str]) -> dict:
    incidents = server.workdir / "state" / "incidents"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        new = sorted(
            path for path in incidents.iterdir() if path.name not in known and (path / "summary.json").exists()
        )
        if new:
            return json.loads((new[-1] / "summary.json").read_text())
        time.sleep(0.1)
    raise RuntimeError("no new incident bundle")


def capture_rounds(rounds: int, stall_timeout: float, streams: int) -> dict:
    server = start_launcher(
        tiny_model_dir(),
        scrape_interval=5.0,
        extra_args=(
            "--stall-timeout",
            f"{stall_timeout:g}",
            "--restart-window",
            "1",
            "--max-restarts",
            "100",
            "--canary-interval",
            "3",  # the tiny model may end its streams before the engine's gauges show them: the canary then
            # is the pending work that the stall check judges
        ),
    )
    captures: list[float] = []
    recoveries: list[float] = []
    shares: list[float] = []
    try:
        server.wait_healthy()
        complete_once(server.base_url)  # the first request of a new vLLM is slow: not in a round
        for round_index in range(rounds):
            time.sleep(6)  # a baseline reading of /metrics, and the engine's pid known
            incidents = server.workdir / "state" / "incidents"
            known = {path.name for path in incidents.iterdir()} if incidents.exists() else set()
            _, recovered = _one_freeze(server, streams)
            capture = _newest_summary(server, known)["capture_s"]
            captures.append(capture)
            recoveries.append(recovered)
            shares.append(100 * capture / recovered)
            log_round(round=round_index, capture_s=capture, freeze_to_healthy_s=recovered)
    finally:
        server.stop()
    return {
        "stall_timeout_s": stall_timeout,
        "streams": streams,
        "capture_s": summary(captures),
        "freeze_to_healthy_again_s": summary(recoveries),
        "capture_share_of_freeze_to_healthy_percent": summary(shares),
    }


def _cpu_seconds(server: Server) -> dict[str, float]:
    """The launcher's own process, vLLM's API server and its EngineCore."""
    found: dict[str, float] = {}
    launcher = psutil.Process(server.process.pid)
    times = launcher.cpu_times()
    found["launcher"] = times.user + times.system
    for process in launcher.children(recursive=True):
        try:
            argv = process.cmdline()
            times = process.cpu_times()
        except psutil.Error:
            continue
        if len(argv) >= 3 and Path(argv[1]).name == "vllm" and argv[2] == "serve":
            found["api_server"] = times.user + times.system
    engine = engine_core(server.process.pid)
    times = engine.cpu_times()
    found["engine_core"] = times.user + times.system
    return found


def canary_cost(rounds: int, window: float, interval: float, settle: float) -> dict:
    model = tiny_model_dir()
    conditions = {"canary-on": f"{interval:g}", "canary-off": "0"}
    per: dict[str, dict[str, list[float]]] = {name: {} for name in conditions}
    canaries: list[int] = []
    for round_index in range(rounds):
        for condition in rotated(list(conditions), round_index):
            server = start_launcher(
                model, scrape_interval=None, extra_args=("--canary-interval", conditions[condition])
            )
            try:
                server.wait_healthy()
                complete_once(server.base_url)  # the once-per-run metric check, done in both conditions
                time.sleep(settle)  # the start's own work done before the window opens
                before = _cpu_seconds(server)
                time.sleep(window)
                after = _cpu_seconds(server)
                if condition == "canary-on":
                    status = json.loads((server.workdir / "state" / "supervisor.json").read_text())
                    engine = next(child for child in status["children"] if child["name"] == "vllm")["engine"]
                    canaries.append(engine["canaries_ok"] + engine["canaries_failed"])
            finally:
                server.stop()
            shares = {name: 100 * (after[name] - before[name]) / window for name in before}
            for name, share in shares.items():
                per[condition].setdefault(name, []).append(share)
            log_round(round=round_index, condition=condition, **{f"{k}_cpu_percent": v for k, v in shares.items()})
    on, off = per["canary-on"], per["canary-off"]
    return {
        "window_s": window,
        "settle_s": settle,
        "canary_interval_s": interval,
        "canaries_per_run": summary(canaries),
        "cpu_percent_of_one_core": {
            condition: {name: summary(values) for name, values in measured.items()}
            for condition, measured in per.items()
        },
        "canary_cost_percent_of_one_core": {
            name: summary(on[name])["median"] - summary(off[name])["median"] for name in on if name in off
        },
    }


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--rounds", type=int, default=5)
    options.add_argument("--stall-timeout", type=float, default=10.0)
    options.add_argument("--streams", type=int, default=8)
    options.add_argument("--cost-rounds", type=int, default=3)
    options.add_argument("--cost-window", type=float, default=120.0)
    options.add_argument("--canary-interval", type=float, default=60.0)
    options.add_argument("--settle", type=float, default=15.0, help="seconds from the first request to the window")
    args = options.parse_args()
    negative = min(args.rounds, args.cost_rounds, args.settle) < 0
    if negative or min(args.stall_timeout, args.cost_window, args.canary_interval) <= 0:
        options.error("rounds and --settle must be >= 0; --stall-timeout, --cost-window and --canary-interval > 0")
    report: dict = {"machine": machine()}
    if args.rounds:
        report["capture"] = capture_rounds(args.rounds, args.stall_timeout, args.streams)
    if args.cost_rounds:
        report["canary"] = canary_cost(args.cost_rounds, args.cost_window, args.canary_interval, args.settle)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
