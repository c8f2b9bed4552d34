"""Dashboard a: vLLM serving. The seed's panels, fixed for today's vLLM, plus what it lacked."""

from __future__ import annotations

from typing import Any

from observability.dashboards import queries as q
from observability.dashboards.grafana_model import Panel, Row, Variable, dashboard
from observability.slo_objectives import DEFAULT_OBJECTIVES, Objectives

VARIABLES = (
    q.HOST_VARIABLE,
    Variable("model_name", "Model", f"label_values(vllm:num_requests_running{{{q.HOST}}}, model_name)"),
    Variable(
        "instance",
        "Instance",
        f'label_values(vllm:num_requests_running{{{q.HOST}, model_name=~"$model_name"}}, instance)',
    ),
    Variable(
        "engine",
        "Engine",
        "label_values(vllm:num_requests_running"
        f'{{{q.HOST}, model_name=~"$model_name", instance=~"$instance"}}, engine)',
    ),
)


def _service_level_row(objectives: Objectives) -> Row:
    """The objectives' thresholds are drawn into the tiles; the dashboards are rendered with the launcher's own."""
    ttft, itl = objectives.ttft, objectives.itl
    return Row(
        "Service level: $host",
        (
            Panel(
                f"TTFT {ttft.quantile_name} vs {ttft.threshold_s:g} s objective",
                q.slo_latency(ttft),
                "stat",
                "s",
                width=6,
                height=5,
                thresholds=((ttft.threshold_s, "red"),),
                description=f"Time to first token, {ttft.quantile_name} over 5 minutes: the objective is "
                f"{ttft.target:.4g} of requests within {ttft.threshold_s:g} s (--slo-ttft-*).",
            ),
            Panel(
                f"Inter-token latency {itl.quantile_name} vs {itl.threshold_s:g} s objective",
                q.slo_latency(itl),
                "stat",
                "s",
                width=6,
                height=5,
                thresholds=((itl.threshold_s, "red"),),
                description=f"Inter-token latency, {itl.quantile_name} over 5 minutes: the objective is "
                f"{itl.target:.4g} of tokens within {itl.threshold_s:g} s (--slo-itl-*).",
            ),
            Panel(
                "Errors and aborts",
                q.SLO_ERROR_RATIO,
                "stat",
                "percentunit",
                width=6,
                height=5,
                thresholds=((0.05, "red"),),
                description="Share of finished requests ending in error or abort.",
            ),
            Panel(
                "KV cache, fullest engine",
                q.SLO_KV_CACHE,
                "stat",
                "percentunit",
                width=6,
                height=5,
                min=0,
                max=1,
                thresholds=((0.8, "orange"), (0.9, "red")),
            ),
        ),
        repeat=q.HOST_VARIABLE.name,  # a row of tiles per host: which host misses its objectives
    )


ROWS = (
    Row(
        "Error budgets (SLOs over 28 days)",
        (
            Panel(
                "Attainment over 28 days",
                (*q.SLO_ATTAINMENT, *q.SLO_OBJECTIVE),
                "stat",
                "percentunit",
                width=8,
                height=6,
                description="Share of good requests (ttft, availability) or tokens (itl) over 28 days, "
                "against each objective (--slo-*-target).",
                options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
            ),
            Panel(
                "Error budget left over 28 days",
                q.SLO_BUDGET_LEFT,
                "stat",
                "percentunit",
                width=8,
                height=6,
                max=1,
                description="1 - errors / budget; below 0, the objective is missed for the 28 days.",
            ),
            Panel(
                "Burn rate per window",
                q.SLO_BURN_RATE,
                width=8,
                height=6,
                description="Errors over each window divided by the budget: 1 spends it in exactly 28 days; "
                "the alerts page at 14.4 (1h and 5m) and 6 (6h and 30m).",
            ),
        ),
    ),
    Row(
        "Efficiency: what a token costs",
        (
            Panel(
                "GPU energy per token",
                q.JOULES_PER_TOKEN,
                unit="joule",
                width=6,
                height=7,
                description="Energy of vLLM's GPUs (board energy only: not CPU, memory or cooling) divided by the "
                "tokens of the same window. No value while no token is made. docs/efficiency.md",
            ),
            Panel(
                "Tokens per kWh",
                q.TOKENS_PER_KWH,
                "stat",
                "short",
                width=6,
                height=7,
                description="Prompt and generated tokens per kWh of GPU board energy; multiply the energy by your "
                "data centre's PUE for facility energy (docs/efficiency.md).",
            ),
            Panel(
                "Cost per 1M tokens (1h)",
                q.COST_PER_MILLION_TOKENS,
                "stat",
                "short",
                width=6,
                height=7,
                description="vLLM's GPU-hours at --gpu-hourly-cost, per million tokens, in its currency. "
                "No data: set --gpu-hourly-cost (none is assumed).",
            ),
            Panel(
                "Idle GPU cost per day",
                q.IDLE_GPU_COST,
                "stat",
                "short",
                width=6,
                height=7,
                description="vLLM's GPU-hours with no request running or waiting, over the last 24 h, at "
                "--gpu-hourly-cost (a day's pace until a day of data exists). No data: set --gpu-hourly-cost.",
            ),
        ),
    ),
    Row(
        "Latency",
        (
            Panel("E2E request latency", q.E2E_LATENCY, unit="s"),
            Panel("Time to first token", q.TTFT, unit="s"),
            Panel(
                "Inter-token latency",
                q.INTER_TOKEN_LATENCY,
                unit="s",
                description="Per token (vllm:inter_token_latency_seconds), formerly time per output token.",
            ),
            Panel(
                "Time per output token, per request",
                q.TIME_PER_OUTPUT_TOKEN_PER_REQUEST,
                unit="s",
                description="Decode time divided by output tokens, one sample per request.",
            ),
            Panel("Queue time", q.QUEUE_TIME, unit="s"),
            Panel("Prefill time", q.PREFILL_TIME, unit="s", width=6),
            Panel("Decode time", q.DECODE_TIME, unit="s", width=6),
        ),
    ),
    Row(
        "Load and scheduler",
        (
            Panel("Token throughput", q.TOKEN_THROUGHPUT, unit="tokens/s"),
            Panel("Scheduler state", q.SCHEDULER_STATE, description="Requests running and waiting (swapped is gone)."),
            Panel("Waiting by reason", q.WAITING_BY_REASON),
            Panel("KV cache utilization", q.KV_CACHE_USAGE, unit="percentunit", min=0, max=1),
            Panel("Prefix cache hit rate", q.PREFIX_CACHE_HIT_RATE, unit="percentunit", min=0, max=1),
            Panel("Preemptions", q.PREEMPTIONS, unit="reqps"),
            Panel("Finish reasons", q.FINISH_REASONS, unit="reqps"),
        ),
    ),
    Row(
        "Requests",
        (
            Panel("Prompt length", q.PROMPT_LENGTH_HEATMAP, "heatmap", "short"),
            Panel("Generation length", q.GENERATION_LENGTH_HEATMAP, "heatmap", "short"),
            Panel("Max generation tokens per request", q.MAX_GENERATION_TOKENS),
            Panel("Request parameters: max_tokens", q.PARAMS_MAX_TOKENS, width=6),
            Panel("Request parameters: n", q.PARAMS_N, width=6),
        ),
    ),
)


def build(objectives: Objectives = DEFAULT_OBJECTIVES) -> dict[str, Any]:
    return dashboard(
        "swm-vllm-serving",
        "vLLM serving",
        "Latency, load and requests of the vLLM servers serve-with-monitoring supervises.",
        VARIABLES,
        (_service_level_row(objectives), *ROWS),
        tags=("vllm",),
    )
