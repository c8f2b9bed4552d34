"""Frozen processes. A hung engine: seconds from freezing vLLM's EngineCore (SIGSTOP, with streams in
flight) until the launcher logs the stall, and until /health answers 200 from a new vLLM. Frozen helpers:
seconds from SIGSTOP of the exporter and Prometheus until each is healthy again (a new process), with
the default 30 s grace period, which a frozen helper would otherwise sit out. Then what the progress
probe (one GET of /metrics per health interval) costs vLLM's API server: its CPU over idle windows with
the probe on (--stall-timeout 120) and off (--stall-timeout 0), alternating, in the same run.

    python -m bench.stall_recovery [--rounds 3] [--helper-rounds 3] [--stall-timeout 10] [--streams 8]
                                   [--cost-rounds 3] [--cost-window 60]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import threading
import time
from pathlib import Path

import psutil

from bench.load import stream_completion
from bench.restart import engine_core
from bench.servers import Server, complete_once, healthy, start_launcher, tiny_model_dir
from bench.stats import log_round, machine, rotated, summary
from launcher.states import read_status

STALL_LINE = "vLLM stalled: no progress for"


def _stall_lines(server: Server) -> int:
    assert server.log_path is not None
    return server.log_path.read_text(errors="replace").count(STALL_LINE)


def _start_streams(server: Server, streams: int, attempts: int = 3) -> None:
    """Streams in flight, so that the freeze catches the engine with work pending. A stream that cannot
    start (vLLM restarting after a stall the launcher saw before the freeze) is said on stderr and tried
    again once vLLM is healthy, so that the round still measures a freeze."""
    for attempt in range(1, attempts + 1):
        events = [threading.Event() for _ in range(streams)]
        failures: list[str] = []
        for event in events:
            threading.Thread(target=stream_completion, args=(server.port, event, failures), daemon=True).start()
        if all(event.wait(60) for event in events):
            return
        assert server.log_path is not None
        restarts = [
            line
            for line in server.log_path.read_text(errors="replace").splitlines()
            if "stall" in line or "restart" in line
        ]
        print(f"streams did not start (attempt {attempt}): {failures[:3]}; launcher: {restarts[-3:]}", file=sys.stderr)
        deadline = time.monotonic() + 120
        while not healthy(server.base_url) and time.monotonic() < deadline:
            time.sleep(0.5)
    raise RuntimeError(f"streams did not start in {attempts} attempts")


def _one_freeze(server: Server, streams: int) -> tuple[float, float]:
    _start_streams(server, streams)
    time.sleep(0.5)
    seen = _stall_lines(server)
    engine = engine_core(server.process.pid)
    engine.send_signal(signal.SIGSTOP)
    frozen = time.monotonic()
    detected = None
    while detected is None or not healthy(server.base_url) or engine.is_running():
        if detected is None and _stall_lines(server) > seen:
            detected = time.monotonic() - frozen
        if time.monotonic() - frozen > 300:
            raise RuntimeError("no recovery within 300 s")
        time.sleep(0.05)
    return detected, time.monotonic() - frozen


HELPERS = ("exporter", "prometheus")


def _children(server: Server) -> dict:
    status = read_status(server.workdir / "state" / "supervisor.json")
    return {child.name: child for child in status.children} if status else {}


def _freeze_helpers(server: Server) -> dict[str, float]:
    deadline = time.monotonic() + 120
    while not all(_children(server).get(n) and _children(server)[n].state == "healthy" for n in HELPERS):
        if time.monotonic() > deadline:
            raise RuntimeError(f"helpers not healthy: {_children(server)}")
        time.sleep(0.25)
    before = {name: _children(server)[name].pid for name in HELPERS}
    frozen = time.monotonic()
    for pid in before.values():
        psutil.Process(pid).send_signal(signal.SIGSTOP)
    done: dict[str, float] = {}
    while len(done) < len(HELPERS):
        if time.monotonic() - frozen > 120:
            raise RuntimeError(f"not healthy again: {_children(server)}")
        for name, child in _children(server).items():
            if name in before and name not in done and child.pid != before[name] and child.state == "healthy":
                done[name] = time.monotonic() - frozen
        time.sleep(0.1)
    return done


def freeze_rounds(rounds: int, helper_rounds: int, stall_timeout: float, streams: int) -> dict:
    model = tiny_model_dir()
    server = start_launcher(
        model,
        scrape_interval=5.0,
        extra_args=("--stall-timeout", f"{stall_timeout:g}", "--restart-window", "1", "--max-restarts", "100"),
    )
    detections: list[float] = []
    recoveries: list[float] = []
    helpers: dict[str, list[float]] = {name: [] for name in HELPERS}
    try:
        server.wait_healthy()
        for round_index in range(rounds):
            time.sleep(6)  # the launcher has a baseline reading of /metrics and knows the engine's pid
            detected, recovered = _one_freeze(server, streams)
            detections.append(detected)
            recoveries.append(recovered)
            log_round(round=round_index, detected_s=detected, healthy_again_s=recovered)
        for round_index in range(helper_rounds):
            for name, seconds in _freeze_helpers(server).items():
                helpers[name].append(seconds)
            log_round(round=round_index, **{f"{name}_healthy_again_s": v[-1] for name, v in helpers.items()})
    finally:
        server.stop()
    return {
        "stall_timeout_s": stall_timeout,
        "streams": streams,
        "freeze_to_stall_logged_s": summary(detections),
        "freeze_to_healthy_again_s": summary(recoveries),
        "helper_freeze_to_healthy_again_s": {name: summary(values) for name, values in helpers.items()},
    }


def _api_server_cpu(server: Server) -> float:
    for process in server.tree():
        try:
            argv = process.cmdline()
            if len(argv) >= 3 and Path(argv[1]).name == "vllm" and argv[2] == "serve":
                times = process.cpu_times()
                return times.user + times.system
        except psutil.Error:
            continue
    raise RuntimeError("no vLLM API server found")


def probe_cost(rounds: int, window: float) -> dict:
    model = tiny_model_dir()
    per_condition: dict[str, list[float]] = {"probe-on": [], "probe-off": []}
    timeouts = {"probe-on": "120", "probe-off": "0"}
    for round_index in range(rounds):
        for condition in rotated(list(per_condition), round_index):
            server = start_launcher(model, scrape_interval=None, extra_args=("--stall-timeout", timeouts[condition]))
            try:
                server.wait_healthy()
                complete_once(server.base_url)  # the once-per-run metric check done in both conditions
                time.sleep(15)
                before = _api_server_cpu(server)
                time.sleep(window)
                share = (_api_server_cpu(server) - before) / window
            finally:
                server.stop()
            per_condition[condition].append(share * 100)
            log_round(round=round_index, condition=condition, api_server_cpu_percent=share * 100)
    on, off = per_condition["probe-on"], per_condition["probe-off"]
    return {
        "window_s": window,
        "api_server_cpu_percent_of_one_core": {name: summary(values) for name, values in per_condition.items()},
        "probe_cost_percent_of_one_core": statistics.median(on) - statistics.median(off) if on and off else None,
    }


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--rounds", type=int, default=3)
    options.add_argument("--helper-rounds", type=int, default=3)
    options.add_argument("--stall-timeout", type=float, default=10.0)
    options.add_argument("--streams", type=int, default=8)
    options.add_argument("--cost-rounds", type=int, default=3)
    options.add_argument("--cost-window", type=float, default=60.0)
    args = options.parse_args()
    rounds = (args.rounds, args.helper_rounds, args.cost_rounds)
    if min(rounds) < 0 or args.stall_timeout <= 0 or args.cost_window <= 0:
        options.error("rounds must be >= 0; --stall-timeout and --cost-window > 0")
    report: dict = {"machine": machine()}
    if args.rounds or args.helper_rounds:
        report["freeze"] = freeze_rounds(args.rounds, args.helper_rounds, args.stall_timeout, args.streams)
    if args.cost_rounds:
        report["probe_cost"] = probe_cost(args.cost_rounds, args.cost_window)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
