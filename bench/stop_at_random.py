"""Stops at random moments over real vLLM: SIGTERM (sometimes twice) to serve-with-monitoring at a random
point of its life (while vLLM starts, idle once healthy, with streams in flight, while it restarts after
its EngineCore was killed), then seconds until every process of the tree is gone. Target: grace + 2 s.
tests/unit/test_stops_at_any_moment.py does the same, fast, with scripted children.

    python -m bench.stop_at_random [--cases 24] [--grace 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import threading
import time

from bench.load import stream_completion
from bench.restart import engine_core
from bench.servers import start_launcher, tiny_model_dir
from bench.stats import log_round, machine, summary

MOMENTS = ("starting", "idle", "streaming", "restarting")


def one_case(rng: random.Random, moment: str, grace: float) -> dict:
    server = start_launcher(tiny_model_dir(), scrape_interval=5.0, grace=grace)
    if moment == "starting":
        time.sleep(rng.uniform(0.5, 25.0))
    else:
        server.wait_healthy()
        time.sleep(rng.uniform(0.0, 6.0))
        if moment == "streaming":
            events = [threading.Event() for _ in range(rng.randint(1, 20))]
            for event in events:
                threading.Thread(target=stream_completion, args=(server.port, event), daemon=True).start()
            for event in events:
                event.wait(60)
            time.sleep(rng.uniform(0.0, 2.0))
        elif moment == "restarting":
            engine_core(server.process.pid).send_signal(signal.SIGKILL)
            time.sleep(rng.uniform(0.0, 20.0))
    twice = rng.random() < 0.25
    if twice:
        threading.Timer(rng.uniform(0.0, 1.0), lambda: server.process.send_signal(signal.SIGTERM)).start()
    return {"moment": moment, "twice": twice, "stop_s": server.stop(timeout=grace + 60)}


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--cases", type=int, default=24)
    options.add_argument("--grace", type=float, default=10.0)
    options.add_argument("--seed", type=int, default=0)
    args = options.parse_args()
    if args.cases < 1 or args.grace <= 0:
        options.error("--cases must be >= 1 and --grace > 0")
    rng = random.Random(args.seed)
    cases = []
    for index in range(args.cases):
        case = one_case(rng, MOMENTS[index % len(MOMENTS)], args.grace)
        cases.append(case)
        log_round(case=index, **case)
    by_moment = {
        moment: summary([case["stop_s"] for case in cases if case["moment"] == moment])
        for moment in MOMENTS
        if any(case["moment"] == moment for case in cases)
    }
    worst = max(cases, key=lambda case: case["stop_s"])
    print(
        json.dumps(
            {
                "machine": machine(),
                "grace_s": args.grace,
                "target_s": args.grace + 2,
                "stop_s": summary([case["stop_s"] for case in cases]),
                "stop_s_by_moment": by_moment,
                "worst": worst,
                "within_target": worst["stop_s"] <= args.grace + 2,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
