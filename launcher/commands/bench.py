"""`serve-with-monitoring bench`: load for the running server with vLLM's own `vllm bench serve`,
so the dashboards fill. The random dataset by default; ShareGPT when a file is given."""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

from launcher.errors import PreflightError, UsageError
from launcher.file_writes import ensure_directory
from launcher.settings import value_parsers as parse
from launcher.settings.argument_parsing import OneLineErrorParser, typed
from launcher.state_layout import StateLayout, default_state_dir
from launcher.states import read_status


def parser() -> argparse.ArgumentParser:
    command = OneLineErrorParser(
        prog="serve-with-monitoring bench",
        allow_abbrev=False,
        description="Send load to the running server with `vllm bench serve`.",
    )
    command.add_argument(
        "--state-dir",
        type=typed(parse.path),
        default=None,
        help="the running launcher's state dir (default: the launcher's default)",
    )
    command.add_argument("--num-prompts", type=typed(parse.whole_between(1, 1_000_000)), default=200)
    command.add_argument("--request-rate", default="10", help="requests per second, or inf (default: %(default)s)")
    command.add_argument(
        "--input-len", type=typed(parse.whole_between(1, 1_000_000)), default=128, help="random dataset: prompt tokens"
    )
    command.add_argument(
        "--output-len", type=typed(parse.whole_between(1, 1_000_000)), default=64, help="random dataset: output tokens"
    )
    command.add_argument(
        "--sharegpt", type=typed(parse.path), default=None, help="a ShareGPT JSON file to draw prompts from instead"
    )
    command.add_argument("--seed", type=typed(parse.whole_between(0, 2**32 - 1)), default=0)
    command.add_argument("extra", nargs=argparse.REMAINDER, help="after --: more `vllm bench serve` options")
    return command


def bench_argv(info: dict[str, str], options: argparse.Namespace) -> list[str]:
    argv = [
        info["vllm_bin"],
        "bench",
        "serve",
        "--backend",
        "vllm",
        "--base-url",
        info["vllm_url"],
        "--model",
        info["model_name"],
        "--tokenizer",
        info["model"],
        "--num-prompts",
        str(options.num_prompts),
        "--request-rate",
        str(options.request_rate),
        "--seed",
        str(options.seed),
    ]
    if options.sharegpt:
        argv += ["--dataset-name", "sharegpt", "--dataset-path", str(options.sharegpt)]
    else:
        argv += [
            "--dataset-name",
            "random",
            "--random-input-len",
            str(options.input_len),
            "--random-output-len",
            str(options.output_len),
            "--ignore-eos",
        ]
    extra = [token for token in options.extra if token != "--"]
    return argv + extra


def run_bench(argv: list[str]) -> int:
    options = parser().parse_args(argv)
    if options.sharegpt and not Path(options.sharegpt).is_file():
        raise UsageError(f"--sharegpt {options.sharegpt}: no such file")
    layout = StateLayout(Path(options.state_dir or default_state_dir()).resolve())
    status = read_status(layout.supervisor_state)
    vllm = status.child("vllm") if status else None
    if status is None or vllm is None or vllm.state != "healthy":
        raise PreflightError(
            f"no healthy server found in {layout.root} (start serve-with-monitoring first, or pass its --state-dir)"
        )
    scratch = layout.scratch("bench")
    ensure_directory(scratch)  # under the state dir: never through a link
    env = {
        **os.environ,
        "TMPDIR": str(scratch),
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "0"),
    }
    # An --api-key server wants OPENAI_API_KEY in the environment; vllm bench serve reads it from there.
    command = bench_argv(status.info, options)
    print("running: " + " ".join(command), flush=True)
    return subprocess.run(command, env=env, check=False).returncode
