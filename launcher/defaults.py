"""The one list of ports and defaults. Everything else imports from here; the SLOs are re-exported from
observability/, their home."""

from __future__ import annotations

from observability import runbooks, slo_objectives

LOOPBACK = "127.0.0.1"

# Ports. The exporter's stays clear of dcgm-exporter (9400), node_exporter (9100) and
# nvidia_gpu_exporter (9835) so it can run beside any of them.
VLLM_PORT = 8000
EXPORTER_PORT = 9402
PROMETHEUS_PORT = 9090
GRAFANA_PORT = 3000
ALERTMANAGER_PORT = 9093

# Supervision.
GRACE_PERIOD_S = 30.0
STARTUP_TIMEOUT_S = 3600.0  # a 70B download on a slow link takes this long
MAX_RESTARTS = 5
RESTART_WINDOW_S = 900.0
HEALTH_INTERVAL_S = 5.0
HEALTH_FAILURES = 3
HEALTH_TIMEOUT_S = 5.0
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 60.0
PROGRESS_EVERY_S = 15.0
# Work pending and nothing moving for this long: the engine is hung (a CUDA or NCCL hang, a deadlock).
# Long enough for the slowest single step of a big model (a long prefill without chunking).
STALL_TIMEOUT_S = 120.0
# A stall restart whose next run stalls again before finishing a request, this many times in a row: a hang that
# survives restarts (a wedged GPU or NCCL communicator). The launcher then exits EXIT_NEEDS_A_PERSON.
MAX_STALL_RESTARTS = 2
# One tiny completion after this long with nothing pending and nothing finished: a frozen idle engine is then
# caught within this plus the stall timeout, at the cost of one one-token request a minute while idle.
CANARY_INTERVAL_S = 60.0

# Incident bundles (STATE_DIR/incidents): the newest this many, within a size cap; each capture gets at most
# this long, so a restart is never delayed by more.
INCIDENT_KEEP = 20
INCIDENT_MAX_BYTES = 256 * 2**20
INCIDENT_CAPTURE_BUDGET_S = 15.0

# Monitoring.
SCRAPE_INTERVAL_S = 5.0
# The state dir may share a disk with the model cache: Prometheus' data is bounded by size as well as by
# time (30 days, for the SLOs' 28-day windows). One host's series take some tens of MB a day.
PROMETHEUS_RETENTION_SIZE = "2GB"
COLLECT_INTERVAL_S = 5.0  # no longer than the scrape interval, so a scrape never sees stale data
# The SLOs and the runbooks' home are observability's, which the rules and dashboards read them from.
OBJECTIVES = slo_objectives.DEFAULT_OBJECTIVES
RUNBOOK_BASE_URL = runbooks.RUNBOOK_BASE_URL

# Probes and scrapes hit these every few seconds; vLLM's access log need not record each one.
QUIET_ENDPOINTS = "/health,/metrics"

# The embedded default serves a tiny model on whatever vLLM is installed, CPU build included.
TINY_MODEL_SERVE_ARGS = (
    "--max-model-len",
    "512",
    "--enforce-eager",
    "--dtype",
    "float32",
    "--kv-cache-memory-bytes",
    "128M",
)
