"""What a token costs, as Prometheus rules: the GPU energy of vLLM's GPUs per token, tokens per kWh, and with
an hourly GPU price the money per million tokens and the price of vLLM's GPUs sitting idle.

Energy comes from the exporter (swm_gpu_energy_joules_total of the GPUs where swm_gpu_used_by_vllm is 1),
tokens from vLLM. The two are joined on `hostname`: the exporter's own label on every GPU series, which the
launcher also puts on its vLLM target (launcher/stack/prometheus_targets.py, and the ServiceMonitor in
Kubernetes), with the value remote write sends as `host`. One launcher runs one vLLM server per host, so a
host's vLLM GPUs are that server's.

Joules per token is energy over a window divided by the tokens of the same window: rate() of both, divided.
Every denominator is filtered with `> 0`, so a window without a token has no value (never Inf or NaN).

    python -m observability.efficiency_rules          # writes observability/prometheus/rules/efficiency.yml
    python -m observability.efficiency_rules --check  # exit 1 when that file is out of date
    python -m observability.efficiency_rules --gpu-hourly-cost 2.5   # with the cost rules, to stdout

The shipped file has no cost rules: the launcher renders its own copy with --gpu-hourly-cost.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from observability.exporter.labels import GPU_LABELS
from observability.files import EFFICIENCY_RULES
from observability.generated_files import write_or_check
from observability.slo_rules import dump_rules

WINDOWS = ("5m", "1h")
JOULES_PER_KWH = 3.6e6
# The most an hour of one GPU may cost, in any currency: a bound that catches a typo (cents for units, an
# extra zero run), not a price list.
MAX_GPU_HOURLY_COST = 1e6

# The one label the vLLM side and the GPU side share on a host (see the module's docstring).
JOIN = "hostname"
SERVER = "hostname, instance, model_name"

VLLM_GPUS = "swm:vllm_gpus:count"
VLLM_IDLE_GPUS = "swm:vllm_idle_gpus:count"
IDLE_GPU_HOURS = "swm:vllm_idle_gpu_hours:1d"
GPU_HOURLY_COST = "swm:gpu_hourly_cost"


def power(window: str) -> str:
    return f"swm:vllm_gpu_power_watts:rate{window}"


def joules_per_generation_token(window: str) -> str:
    return f"swm:vllm_joules_per_generation_token:rate{window}"


def joules_per_token(window: str) -> str:
    return f"swm:vllm_joules_per_token:rate{window}"


def tokens_per_kwh(window: str) -> str:
    return f"swm:vllm_tokens_per_kwh:rate{window}"


def cost_per_million_generation_tokens(window: str) -> str:
    return f"swm:vllm_cost_per_million_generation_tokens:rate{window}"


def cost_per_million_tokens(window: str) -> str:
    return f"swm:vllm_cost_per_million_tokens:rate{window}"


IDLE_GPU_COST = "swm:vllm_idle_gpu_cost:1d"


def check_gpu_hourly_cost(value: float) -> float:
    """The price as a number fit for a rule: positive, finite and bounded; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {value!r}")
    if not (0 < value < MAX_GPU_HOURLY_COST) or not math.isfinite(value):
        raise ValueError(f"expected an amount between 0 and {MAX_GPU_HOURLY_COST:g} (exclusive), got {value!r}")
    return float(value)


def _number(value: float) -> str:
    """A float as PromQL reads it back exactly: repr() of a finite float is a PromQL number literal."""
    assert math.isfinite(value)
    return repr(float(value))


_VLLM_GPU = "(swm_gpu_used_by_vllm == 1)"
_ON_GPU = f"on({', '.join(GPU_LABELS)})"


def _generation_tokens(window: str) -> str:
    return f"sum by ({SERVER}) (rate(vllm:generation_tokens_total[{window}]))"


def _all_tokens(window: str) -> str:
    return f"sum by ({SERVER}) (rate(vllm:prompt_tokens_total[{window}]))\n  + {_generation_tokens(window)}"


def _per_server(numerator: str, tokens: str) -> str:
    """A per-host figure divided by each server's tokens: no value where the window holds no token."""
    return f"{numerator}\n  / on({JOIN}) group_right()\n(\n  {tokens}\n  > 0\n)"


def _energy_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {"record": VLLM_GPUS, "expr": f"count by ({JOIN}) {_VLLM_GPU}"},
        # 1 while nothing is running or waiting, else 0 (never absent): the day's average is the share of
        # the day vLLM's GPUs had nothing to do.
        {
            "record": VLLM_IDLE_GPUS,
            "expr": (
                f"{VLLM_GPUS}\n  * on({JOIN})\n"
                f"(\n  sum by ({JOIN}) (vllm:num_requests_running) + sum by ({JOIN}) (vllm:num_requests_waiting)"
                "\n  == bool 0\n)"
            ),
        },
    ]
    for window in WINDOWS:
        rules.append(
            {
                "record": power(window),
                "expr": (
                    f"sum by ({JOIN}) (\n  rate(swm_gpu_energy_joules_total[{window}])\n"
                    f"    and {_ON_GPU}\n  {_VLLM_GPU}\n)"
                ),
            }
        )
    for window in WINDOWS:
        rules += [
            {
                "record": joules_per_generation_token(window),
                "expr": _per_server(power(window), _generation_tokens(window)),
            },
            {"record": joules_per_token(window), "expr": _per_server(power(window), _all_tokens(window))},
            # Not from the record above when its value is 0 (an idle GPU that drew nothing): no Inf.
            {"record": tokens_per_kwh(window), "expr": f"{_number(JOULES_PER_KWH)} / ({joules_per_token(window)} > 0)"},
        ]
    return rules


def _cost_rules(gpu_hourly_cost: float) -> list[dict[str, Any]]:
    cost = check_gpu_hourly_cost(gpu_hourly_cost)
    # What vLLM's GPUs cost per second, per million tokens a second: GPUs x price / 3600 x 1e6.
    per_million = _number(cost * 1e6 / 3600)
    rules: list[dict[str, Any]] = [{"record": GPU_HOURLY_COST, "expr": f"vector({_number(cost)})"}]
    for window in WINDOWS:
        gpus = f"avg_over_time({VLLM_GPUS}[{window}]) * {per_million}"
        rules += [
            {
                "record": cost_per_million_generation_tokens(window),
                "expr": _per_server(gpus, _generation_tokens(window)),
            },
            {"record": cost_per_million_tokens(window), "expr": _per_server(gpus, _all_tokens(window))},
        ]
    rules.append({"record": IDLE_GPU_COST, "expr": f"{IDLE_GPU_HOURS} * {_number(cost)}"})
    return rules


def efficiency_rule_groups(gpu_hourly_cost: float | None = None) -> dict[str, Any]:
    groups: list[dict[str, Any]] = [
        # Every 30 s, as the other recording groups (recording.yml).
        {"name": "swm-efficiency", "interval": "30s", "rules": _energy_rules()},
        # A day's average moves slowly; it reads 2,880 points per host, so not every 30 s.
        {
            "name": "swm-efficiency-daily",
            "interval": "5m",
            "rules": [{"record": IDLE_GPU_HOURS, "expr": f"avg_over_time({VLLM_IDLE_GPUS}[1d]) * 24"}],
        },
    ]
    if gpu_hourly_cost is not None:
        groups.append({"name": "swm-efficiency-cost", "interval": "30s", "rules": _cost_rules(gpu_hourly_cost)})
    return {"groups": groups}


def render(gpu_hourly_cost: float | None = None) -> str:
    origin = (
        "with no --gpu-hourly-cost, so without cost rules"
        if gpu_hourly_cost is None
        else "with --gpu-hourly-cost, so with its cost rules"
    )
    return (
        f"# Generated by `python -m observability.efficiency_rules` ({origin});\n"
        "# the launcher renders its own copy. Edit observability/efficiency_rules.py, not this.\n"
        + dump_rules(efficiency_rule_groups(gpu_hourly_cost), expr_ending="\n")
    )


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--check", action="store_true", help="exit 1 when efficiency.yml is out of date")
    options.add_argument(
        "--gpu-hourly-cost", type=float, metavar="AMOUNT", help="print the rules with cost rules to stdout"
    )
    args = options.parse_args()
    if args.gpu_hourly_cost is not None:
        try:
            sys.stdout.write(render(args.gpu_hourly_cost))
        except ValueError as error:
            print(f"--gpu-hourly-cost: {error}", file=sys.stderr)
            return 2
        return 0
    return write_or_check(EFFICIENCY_RULES, render(), "observability.efficiency_rules", args.check)


if __name__ == "__main__":
    sys.exit(main())
