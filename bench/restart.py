"""Restart: seconds from killing vLLM's EngineCore until the launcher says so ("lost its EngineCore"),
and until /health answers 200 again under serve-with-monitoring, against cold starts of bare `vllm
serve` measured in the same run.

    python -m bench.restart [--rounds 5] [--cold-starts 5]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import time

import psutil

from bench.servers import Server, healthy, start_bare, start_launcher, tiny_model_dir
from bench.stats import log_round, machine, summary


def engine_core(launcher_pid: int) -> psutil.Process:
    for process in psutil.Process(launcher_pid).children(recursive=True):
        try:
            if " ".join(process.cmdline()).startswith("VLLM::EngineCore"):
                return process
        except psutil.Error:
            continue
    raise RuntimeError("no EngineCore found")


def _lost_engine_lines(server: Server) -> int:
    assert server.log_path is not None
    return server.log_path.read_text(errors="replace").count("lost its EngineCore")


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--rounds", type=int, default=5)
    options.add_argument("--cold-starts", type=int, default=5)
    args = options.parse_args()
    model = tiny_model_dir()
    restarts: list[float] = []
    detections: list[float] = []
    colds: list[float] = []
    for _ in range(args.cold_starts):
        bare = start_bare(model)
        try:
            colds.append(bare.wait_healthy())
        finally:
            bare.stop()
    # A 1 s window: every round sees the first-restart backoff (1 s), not one that grew in earlier rounds.
    launcher = start_launcher(
        model, scrape_interval=None, extra_args=("--restart-window", "1", "--max-restarts", "100")
    )
    try:
        launcher.wait_healthy()
        for round_index in range(args.rounds):
            time.sleep(6)  # the launcher notes the engine's pid on its next healthy probe
            seen = _lost_engine_lines(launcher)
            engine_core(launcher.process.pid).send_signal(signal.SIGKILL)
            killed = time.monotonic()
            while _lost_engine_lines(launcher) == seen:
                if time.monotonic() - killed > 60:
                    raise RuntimeError("the launcher never said it lost its EngineCore")
                time.sleep(0.005)
            detections.append(time.monotonic() - killed)
            while healthy(launcher.base_url) and time.monotonic() - killed < 30:
                time.sleep(0.05)  # the old server may answer for a moment
            while not healthy(launcher.base_url):
                if time.monotonic() - killed > 300:
                    raise RuntimeError("no recovery within 300 s")
                time.sleep(0.05)
            restarts.append(time.monotonic() - killed)
            log_round(round=round_index, detected_s=detections[-1], restart_s=restarts[-1])
            time.sleep(2)
    finally:
        launcher.stop()
    report = {
        "machine": machine(),
        "engine_death_detected_s": summary(detections),
        "restart_after_engine_kill_s": summary(restarts),
        "cold_start_bare_s": summary(colds),
    }
    if restarts and colds:
        report["restart_ratio_vs_cold_start"] = statistics.median(restarts) / statistics.median(colds)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
