"""Every PromQL expression the dashboards use, each in one place.

Selectors carry the dashboard variables; a test substitutes them with real label values and runs each
query against a live Prometheus scraping a real vLLM. Counters use their _total names.
"""

from __future__ import annotations

from observability import efficiency_rules as efficiency
from observability.dashboards.grafana_model import Query, Variable
from observability.slo_objectives import Objective
from observability.slo_rules import LATENCY_SLIS

# Many hosts at once: a central store that hosts push to (--remote-write) labels every series of a host,
# its recorded series and ALERTS included, with the external label `host`; `up` is one series every host
# has. A Prometheus queried where it runs never shows its external labels: there the variable lists no
# value, Grafana selects All (.*), and `host=~".*"` matches the series that have no host label, as before.
# A central Prometheus that scrapes the hosts itself (deploy/fleet/prometheus.yml) has no host label
# either: All again, and the instance and hostname variables tell its hosts apart.
HOST_VARIABLE = Variable("host", "Host", "label_values(up, host)")
HOST = 'host=~"$host"'
VLLM = f'{HOST}, model_name=~"$model_name", instance=~"$instance", engine=~"$engine"'
VLLM_NO_ENGINE = f'{HOST}, model_name=~"$model_name", instance=~"$instance"'
GPU = f'{HOST}, hostname=~"$hostname", gpu=~"$gpu"'
RATE = "$__rate_interval"
QUANTILES = (0.5, 0.9, 0.95, 0.99)


def vllm_quantiles(histogram: str) -> tuple[Query, ...]:
    """Latency quantiles from a histogram: never rate(_sum), which is seconds per second, not a latency."""
    return tuple(
        Query(
            f"histogram_quantile({q}, sum by (le, model_name) (rate(vllm:{histogram}_bucket{{{VLLM}}}[{RATE}])))",
            f"p{round(q * 100)} {{{{model_name}}}}",
        )
        for q in QUANTILES
    )


def vllm_mean(histogram: str) -> Query:
    return Query(
        f"sum by (model_name) (rate(vllm:{histogram}_sum{{{VLLM}}}[{RATE}]))"
        f" / sum by (model_name) (rate(vllm:{histogram}_count{{{VLLM}}}[{RATE}]))",
        "mean {{model_name}}",
    )


def vllm_heatmap(histogram: str) -> Query:
    return Query(f"sum by (le) (increase(vllm:{histogram}_bucket{{{VLLM}}}[{RATE}]))", "{{le}}", format="heatmap")


# -- vLLM serving ------------------------------------------------------------------------------------
E2E_LATENCY = (*vllm_quantiles("e2e_request_latency_seconds"), vllm_mean("e2e_request_latency_seconds"))
TTFT = (*vllm_quantiles("time_to_first_token_seconds"), vllm_mean("time_to_first_token_seconds"))
INTER_TOKEN_LATENCY = vllm_quantiles("inter_token_latency_seconds")
TIME_PER_OUTPUT_TOKEN_PER_REQUEST = vllm_quantiles("request_time_per_output_token_seconds")
QUEUE_TIME = vllm_quantiles("request_queue_time_seconds")
PREFILL_TIME = vllm_quantiles("request_prefill_time_seconds")
DECODE_TIME = vllm_quantiles("request_decode_time_seconds")
MAX_GENERATION_TOKENS = vllm_quantiles("request_max_num_generation_tokens")
PARAMS_MAX_TOKENS = vllm_quantiles("request_params_max_tokens")
PARAMS_N = (
    Query(
        f"histogram_quantile(0.99, sum by (le, model_name) (rate(vllm:request_params_n_bucket{{{VLLM}}}[{RATE}])))",
        "n p99 {{model_name}}",
    ),
)
PROMPT_LENGTH_HEATMAP = (vllm_heatmap("request_prompt_tokens"),)
GENERATION_LENGTH_HEATMAP = (vllm_heatmap("request_generation_tokens"),)

TOKEN_THROUGHPUT = (
    Query(f"sum by (model_name) (rate(vllm:prompt_tokens_total{{{VLLM}}}[{RATE}]))", "prompt {{model_name}}"),
    Query(f"sum by (model_name) (rate(vllm:generation_tokens_total{{{VLLM}}}[{RATE}]))", "generation {{model_name}}"),
)
SCHEDULER_STATE = (
    Query(f"sum by (model_name) (vllm:num_requests_running{{{VLLM}}})", "running {{model_name}}"),
    Query(f"sum by (model_name) (vllm:num_requests_waiting{{{VLLM}}})", "waiting {{model_name}}"),
)
WAITING_BY_REASON = (
    Query(f"sum by (model_name, reason) (vllm:num_requests_waiting_by_reason{{{VLLM}}})", "{{reason}} {{model_name}}"),
)
KV_CACHE_USAGE = (
    # With --api-server-count > 1 a gauge can carry a pid label; max over it, per engine.
    Query(f"max by (model_name, engine) (vllm:kv_cache_usage_perc{{{VLLM}}})", "engine {{engine}} {{model_name}}"),
)
PREFIX_CACHE_HIT_RATE = (
    Query(
        f"sum by (model_name) (rate(vllm:prefix_cache_hits_total{{{VLLM}}}[{RATE}]))"
        f" / sum by (model_name) (rate(vllm:prefix_cache_queries_total{{{VLLM}}}[{RATE}]))",
        "{{model_name}}",
    ),
)
PREEMPTIONS = (Query(f"sum by (model_name) (rate(vllm:num_preemptions_total{{{VLLM}}}[{RATE}]))", "{{model_name}}"),)
FINISH_REASONS = (
    Query(
        f"sum by (model_name, finished_reason) (rate(vllm:request_success_total{{{VLLM}}}[{RATE}]))",
        "{{finished_reason}} {{model_name}}",
    ),
)


def slo_latency(objective: Objective) -> tuple[Query, ...]:
    """The quantile a latency objective bounds (the p99 for a 0.99 target) over 5 minutes, beside the threshold
    the running rules were given (swm:slo_threshold_seconds), so a tile never restates a number of its own."""
    metric = LATENCY_SLIS[objective.sli].metric
    rate = f"rate({metric}_bucket{{{VLLM_NO_ENGINE}}}[5m])"
    return (
        Query(
            f"max(histogram_quantile({objective.target:g}, sum by (le, model_name, instance) ({rate})))",
            f"{objective.sli.upper()} {objective.quantile_name}",
        ),
        Query(f'max(swm:slo_threshold_seconds{{slo="{objective.sli}", {HOST}}})', "objective"),
    )


# What a token costs (observability/efficiency_rules.py): each record per vLLM server (hostname, instance,
# model_name), the idle cost per host; the cost records exist only with --gpu-hourly-cost.
EFFICIENCY = VLLM_NO_ENGINE
JOULES_PER_TOKEN = tuple(
    Query(f"{record(window)}{{{EFFICIENCY}}}", f"{what} {window} {{{{model_name}}}} {{{{instance}}}}")
    for window in efficiency.WINDOWS
    for record, what in (
        (efficiency.joules_per_generation_token, "per generated token"),
        (efficiency.joules_per_token, "per token"),
    )
)
TOKENS_PER_KWH = tuple(
    Query(f"{efficiency.tokens_per_kwh(window)}{{{EFFICIENCY}}}", f"{window} {{{{model_name}}}}")
    for window in efficiency.WINDOWS
)
COST_PER_MILLION_TOKENS = (
    Query(f"{efficiency.cost_per_million_tokens('1h')}{{{EFFICIENCY}}}", "all tokens {{model_name}}"),
    Query(f"{efficiency.cost_per_million_generation_tokens('1h')}{{{EFFICIENCY}}}", "generated {{model_name}}"),
)
IDLE_GPU_COST = (Query(f"{efficiency.IDLE_GPU_COST}{{{HOST}}}", "{{hostname}}"),)

SLO_ERROR_RATIO = (Query(f"max(swm:vllm_request_error_ratio:rate10m{{{VLLM_NO_ENGINE}}})", "errors + aborts"),)
SLO_KV_CACHE = (Query(f"max(swm:vllm_kv_cache_usage:max{{{VLLM_NO_ENGINE}}})", "KV cache"),)

# The error-budget SLOs (observability/slo_rules.py): their recording rules carry the objectives, so the
# panels never restate a threshold.
SLO_MODEL = f'{HOST}, model_name=~"$model_name"'
SLO_ATTAINMENT = (Query(f"swm:slo_attainment:ratio28d{{{SLO_MODEL}}}", "{{slo}} {{model_name}}"),)
SLO_OBJECTIVE = (Query(f"swm:slo_objective:ratio{{{HOST}}}", "objective {{slo}}"),)
SLO_BUDGET_LEFT = (Query(f"swm:slo_error_budget_remaining:ratio28d{{{SLO_MODEL}}}", "{{slo}} {{model_name}}"),)
SLO_BURN_WINDOWS = ("5m", "1h", "6h", "1d", "3d")
# Matched on host and cluster too: a central store that hosts push to (--remote-write) holds one objective
# per host, and on(slo) alone would then match many to many. Locally neither label exists.
SLO_BURN_RATE = tuple(
    Query(
        f"swm:slo_error_ratio:rate{window}{{{SLO_MODEL}}}"
        f" / on(slo, host, cluster) group_left() (1 - swm:slo_objective:ratio{{{HOST}}})",
        f"{{{{slo}}}} {window}",
    )
    for window in SLO_BURN_WINDOWS
)


# -- GPU (dcgm-exporter names, so this also reads dcgm-exporter data) ----------------------------------
def gpu_series(metric: str, scale: str = "") -> tuple[Query, ...]:
    return (Query(f"{metric}{{{GPU}}}{scale}", "GPU {{gpu}} {{hostname}}"),)


GPU_UTIL = gpu_series("DCGM_FI_DEV_GPU_UTIL")
GPU_MEM_COPY_UTIL = gpu_series("DCGM_FI_DEV_MEM_COPY_UTIL")
GPU_FB_USED = (
    Query(f"DCGM_FI_DEV_FB_USED{{{GPU}}}", "used GPU {{gpu}} {{hostname}}"),
    Query(f"DCGM_FI_DEV_FB_FREE{{{GPU}}}", "free GPU {{gpu}} {{hostname}}"),
)
GPU_POWER = (
    Query(f"DCGM_FI_DEV_POWER_USAGE{{{GPU}}}", "draw GPU {{gpu}} {{hostname}}"),
    Query(f"DCGM_FI_DEV_ENFORCED_POWER_LIMIT{{{GPU}}}", "limit GPU {{gpu}} {{hostname}}"),
)
GPU_ENERGY_RATE = (
    Query(f"rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{GPU}}}[{RATE}]) / 1000", "GPU {{gpu}} {{hostname}}"),
)
GPU_TEMPERATURE = (
    Query(f"DCGM_FI_DEV_GPU_TEMP{{{GPU}}}", "GPU {{gpu}} {{hostname}}"),
    Query(f"DCGM_FI_DEV_MEMORY_TEMP{{{GPU}}}", "memory GPU {{gpu}} {{hostname}}"),
)
GPU_CLOCKS = (
    Query(f"DCGM_FI_DEV_SM_CLOCK{{{GPU}}}", "SM GPU {{gpu}} {{hostname}}"),
    Query(f"DCGM_FI_DEV_MEM_CLOCK{{{GPU}}}", "memory GPU {{gpu}} {{hostname}}"),
)
GPU_CODEC = (
    Query(f"DCGM_FI_DEV_ENC_UTIL{{{GPU}}}", "encoder GPU {{gpu}} {{hostname}}"),
    Query(f"DCGM_FI_DEV_DEC_UTIL{{{GPU}}}", "decoder GPU {{gpu}} {{hostname}}"),
)
GPU_THROTTLE_REASONS = (Query(f"swm_gpu_clocks_event_reason{{{GPU}}} == 1", "{{reason}} GPU {{gpu}} {{hostname}}"),)
GPU_VIOLATIONS = (
    Query(f"rate(DCGM_FI_DEV_POWER_VIOLATION{{{GPU}}}[{RATE}]) / 1e6", "power GPU {{gpu}} {{hostname}}"),
    Query(f"rate(DCGM_FI_DEV_THERMAL_VIOLATION{{{GPU}}}[{RATE}]) / 1e6", "thermal GPU {{gpu}} {{hostname}}"),
)
GPU_PCIE_REPLAYS = (Query(f"rate(DCGM_FI_DEV_PCIE_REPLAY_COUNTER{{{GPU}}}[{RATE}])", "GPU {{gpu}} {{hostname}}"),)
GPU_ECC = (
    Query(f"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL{{{GPU}}}", "single-bit GPU {{gpu}} {{hostname}}"),
    Query(f"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{{{GPU}}}", "double-bit GPU {{gpu}} {{hostname}}"),
)
GPU_REMAPPED_ROWS = (
    Query(f"DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS{{{GPU}}}", "correctable GPU {{gpu}} {{hostname}}"),
    Query(f"DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS{{{GPU}}}", "uncorrectable GPU {{gpu}} {{hostname}}"),
    Query(f"DCGM_FI_DEV_ROW_REMAP_FAILURE{{{GPU}}}", "failure GPU {{gpu}} {{hostname}}"),
)
GPU_NVLINK_ERRORS = (
    Query(f"rate(DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL{{{GPU}}}[{RATE}])", "CRC flit GPU {{gpu}}"),
    Query(f"rate(DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL{{{GPU}}}[{RATE}])", "replay GPU {{gpu}}"),
)
GPU_XID_EVENTS = (Query(f"increase(swm_gpu_xid_events_total{{{GPU}}}[1h])", "GPU {{gpu}} {{hostname}}"),)
GPU_XID_LAST_SEEN = (
    Query(
        f"time() - swm_gpu_xid_last_seen_timestamp_seconds{{{GPU}}}",
        "XID {{xid}} GPU {{gpu}} {{hostname}}",
        instant=True,
        format="table",
    ),
)
GPU_PROCESS_MEMORY = (
    Query(
        f"swm_gpu_process_memory_used_bytes{{{GPU}}}", "{{process_name}} pid {{pid}} vLLM={{in_vllm_tree}} GPU {{gpu}}"
    ),
)
GPU_MEMORY_BY_OWNER = (
    Query(
        f"sum by (hostname, gpu, in_vllm_tree) (swm_gpu_memory_used_by_owner_bytes{{{GPU}}})",
        "vLLM={{in_vllm_tree}} GPU {{gpu}} {{hostname}}",
    ),
)
GPU_PROFILING = (
    Query(f"DCGM_FI_PROF_SM_ACTIVE{{{GPU}}}", "SM active GPU {{gpu}}"),
    Query(f"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{{{GPU}}}", "tensor active GPU {{gpu}}"),
    Query(f"DCGM_FI_PROF_DRAM_ACTIVE{{{GPU}}}", "DRAM active GPU {{gpu}}"),
)

# -- Health ------------------------------------------------------------------------------------------
TARGETS_UP = (Query(f"up{{{HOST}}}", "{{job}} {{instance}}"),)
ALERTS_FIRING = (
    Query(f'count(ALERTS{{alertstate="firing", {HOST}}}) or vector(0)', "firing"),
    Query(f'count(ALERTS{{alertstate="pending", {HOST}}}) or vector(0)', "pending"),
)
ALERTS_TABLE = (Query(f"ALERTS{{{HOST}}}", "", instant=True, format="table"),)
CHILD_STATE = (Query(f"swm_child_state{{{HOST}}} == 1", "{{child}}: {{state}}", instant=True, format="table"),)
CHILD_RESTARTS = (Query(f"increase(swm_child_restarts_total{{{HOST}}}[1h])", "{{child}} {{instance}}"),)
CHILD_RSS = (Query(f"swm_child_resident_memory_bytes{{{HOST}}}", "{{child}} {{instance}}"),)
CHILD_CPU = (Query(f"rate(swm_child_cpu_seconds_total{{{HOST}}}[{RATE}])", "{{child}} {{instance}}"),)
EXPORTER_COLLECTOR_UP = (Query(f"swm_exporter_collector_up{{{HOST}}}", "{{collector}} {{instance}}"),)
EXPORTER_COLLECTION_AGE = (
    Query(f"time() - swm_exporter_collector_last_success_timestamp_seconds{{{HOST}}}", "{{collector}} {{instance}}"),
)
EXPORTER_DURATION = (Query(f"swm_exporter_collector_duration_seconds{{{HOST}}}", "{{collector}} {{instance}}"),)
EXPORTER_ERRORS = (Query(f"increase(swm_exporter_collector_errors_total{{{HOST}}}[1h])", "{{collector}} {{instance}}"),)
NVML_UP = (Query(f"swm_nvml_up{{{HOST}}}", "{{hostname}}"),)
SCRAPE_DURATION = (Query(f"scrape_duration_seconds{{{HOST}}}", "{{job}} {{instance}}"),)
SUPERVISOR_STATE_AGE = (Query(f"swm_supervisor_state_age_seconds{{{HOST}}}", "{{instance}}"),)
# Incident bundles and the canary: 0 rather than "no data" on a host that has had none.
INCIDENTS_24H = (Query(f"sum by (reason) (increase(swm_incidents_total{{{HOST}}}[24h])) or vector(0)", "{{reason}}"),)
CANARY_OUTCOMES = (
    Query(
        f"sum by (instance, outcome) (increase(swm_canary_requests_total{{{HOST}}}[1h]))", "{{outcome}} {{instance}}"
    ),
)
CANARY_LATENCY = (Query(f"swm_canary_last_latency_seconds{{{HOST}}}", "{{child}} {{instance}}"),)
STATE_DIR_DISK_FREE = (
    Query(
        f"swm_host_filesystem_free_bytes{{{HOST}}} / swm_host_filesystem_size_bytes{{{HOST}}}", "{{hostname}} {{path}}"
    ),
)
# Alertmanager is scraped every 30 s (observability/prometheus/prometheus.yml), so a window of 4 of the
# datasource's 5 s intervals ($__rate_interval) would hold one sample and show nothing: 2 minutes here.
SLOW_JOB_RATE = "2m"
NOTIFICATIONS_SENT = (
    Query(
        f"sum by (instance, integration) (rate(alertmanager_notifications_total{{{HOST}}}[{SLOW_JOB_RATE}]))",
        "{{integration}}",
    ),
)
NOTIFICATIONS_FAILED = (
    Query(
        f"sum by (instance, integration) (rate(alertmanager_notifications_failed_total{{{HOST}}}[{SLOW_JOB_RATE}]))",
        "{{integration}}",
    ),
)
HOST_CPU = (Query(f"swm_host_cpu_utilization_ratio{{{HOST}}}", "CPU {{hostname}}"),)
HOST_MEMORY = (
    Query(
        f"1 - swm_host_memory_available_bytes{{{HOST}}} / swm_host_memory_total_bytes{{{HOST}}}", "memory {{hostname}}"
    ),
)
