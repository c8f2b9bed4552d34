"""One-line bugs in the core decisions, each of which a fast test must catch (scripts/check-planted-bugs).

Each entry: the file, one line of it as it is (without its indentation; it must appear exactly once), the line
that replaces it (indentation kept; "" deletes the line), and what the bug breaks.
"""

from typing import NamedTuple


class PlantedBug(NamedTuple):
    name: str
    path: str
    original: str
    replacement: str
    breaks: str


PLANTED_BUGS = (
    # Exit codes.
    PlantedBug(
        "preflight-exits-1",
        "launcher/errors.py",
        "EXIT_ENVIRONMENT = 3  # a pre-flight check on this machine failed: nothing started",
        "EXIT_ENVIRONMENT = 1  # a pre-flight check on this machine failed: nothing started",
        "A failed pre-flight check exits 1 like a give-up, so systemd restarts a launcher that cannot start.",
    ),
    PlantedBug(
        "rejected-command-line-exits-1",
        "launcher/supervision/supervised_child.py",
        "self._give_up(fatal, ARGPARSE_EXIT if exit.code == ARGPARSE_EXIT else EXIT_GAVE_UP)",
        "self._give_up(fatal, ARGPARSE_EXIT if exit.code != ARGPARSE_EXIT else EXIT_GAVE_UP)",
        "vLLM rejecting its command line ends the launcher with 1 instead of 2.",
    ),
    PlantedBug(
        "config-error-needs-healthy",
        "launcher/supervision/restart_policy.py",
        "and not previous.ever_healthy",
        "and previous.ever_healthy",
        "A server that never came up and fails the same way twice is restarted until the cap, not given up on.",
    ),
    PlantedBug(
        "one-restart-too-many",
        "launcher/supervision/restart_policy.py",
        "return self.restarts_in_window(now) < self.max_restarts",
        "return self.restarts_in_window(now) <= self.max_restarts",
        "--max-restarts N allows N+1 restarts in the window.",
    ),
    PlantedBug(
        "gpu-failed-exits-1",
        "launcher/supervision/supervisor.py",
        "exit_code = outcome.exit_code if outcome else EXIT_GAVE_UP",
        "exit_code = EXIT_GAVE_UP",
        "Every failure of the critical child exits 1: no 2, and no 4 for a GPU that needs a person.",
    ),
    PlantedBug(
        "closed-stdout-exit",
        "launcher/commands/main.py",
        "EXIT_STDOUT_CLOSED = 128 + signal.SIGPIPE",
        "EXIT_STDOUT_CLOSED = 128 + signal.SIGTERM",
        "`... | head` makes the launcher exit 143 instead of the shell's 141 for SIGPIPE.",
    ),
    PlantedBug(
        "port-in-use-is-usage",
        "launcher/preflight.py",
        'raise PreflightError(f"{what}: port {port} on {host} is already in use") from None',
        'raise UsageError(f"{what}: port {port} on {host} is already in use") from None',
        "A port held by another process exits 2 (bad command line) instead of 3 (this machine).",
    ),
    # The stall judgement.
    PlantedBug(
        "canary-not-work",
        "launcher/vllm_server/progress.py",
        "pending = reading.pending or canary_pending",
        "pending = reading.pending",
        "A frozen idle engine is never judged stalled: the canary in flight does not count as pending work.",
    ),
    PlantedBug(
        "waiting-not-work",
        "launcher/vllm_server/metrics_page.py",
        "return self.running + self.waiting > 0",
        "return self.running > 0",
        "An engine with requests queued but none running is idle, so a scheduler hang is never a stall.",
    ),
    PlantedBug(
        "stall-one-read-late",
        "launcher/vllm_server/progress.py",
        "if not self.enabled or still_for < self.stall_timeout_s:",
        "if not self.enabled or still_for <= self.stall_timeout_s:",
        "A stall exactly at --stall-timeout is not called: it waits for the next reading.",
    ),
    PlantedBug(
        "escalation-one-stall-late",
        "launcher/vllm_server/child.py",
        "if 0 < self._max_stall_restarts <= self._stalls_in_a_row:",
        "if 0 < self._max_stall_restarts < self._stalls_in_a_row:",
        "--max-stall-restarts N escalates (exit 4) only after N+1 stall restarts in a row.",
    ),
    PlantedBug(
        "lingering-never-resets",
        "launcher/vllm_server/lingering_front_end.py",
        "self._since = None",
        "pass",
        "A front end seen alone once, then with its engine again, is killed at once the next time it is alone.",
    ),
    PlantedBug(
        "canaries-pile-up",
        "launcher/vllm_server/canary.py",
        "if watch.sent_monotonic is not None or now - watch.idle_since < self.interval_s:",
        "if now - watch.idle_since < self.interval_s:",
        "A canary is sent every interval while the last one is still in flight (a frozen engine gets a pile).",
    ),
    # The helpers' environment.
    PlantedBug(
        "hf-token-allowed",
        "launcher/helper_environment.py",
        '"CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES",',
        '"CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "HF_TOKEN",',
        "The hub token reaches the exporter, Prometheus, Alertmanager and Grafana.",
    ),
    PlantedBug(
        "prefixed-secret-allowed",
        "launcher/helper_environment.py",
        "if name in ALLOWED or (name.startswith(ALLOWED_PREFIXES) and not names_a_secret(name))",
        "if name in ALLOWED or name.startswith(ALLOWED_PREFIXES)",
        "SWM_API_KEY, XDG_*_TOKEN and the like reach every helper.",
    ),
    PlantedBug(
        "probes-get-secrets",
        "launcher/helper_environment.py",
        "return {name: value for name, value in environment.items() if not names_a_secret(name)}",
        "return dict(environment)",
        "vLLM's --help probe and the tiny model's build get HF_TOKEN and VLLM_API_KEY.",
    ),
    # The password check.
    PlantedBug(
        "known-user-any-password",
        "observability/exporter/access.py",
        "return valid and hashed is not None",
        "return valid or hashed is not None",
        "Any password is accepted for a user in basic_auth_users.",
    ),
    PlantedBug(
        "unknown-user-refused-fast",
        "observability/exporter/access.py",
        "self.dummy_cost = max(bcrypt_cost(hashed) for hashed in users.values())",
        "self.dummy_cost = min(bcrypt_cost(hashed) for hashed in users.values())",
        "An unknown name is refused faster than a known one with a wrong password: names can be told by timing.",
    ),
    PlantedBug(
        "sd-unprotected",
        "observability/exporter/access.py",
        'PROTECTED_PATHS = ("/metrics", "/sd")',
        'PROTECTED_PATHS = ("/metrics",)',
        "/sd answers without a password under basic auth.",
    ),
    PlantedBug(
        "client-cert-optional",
        "observability/exporter/exporter_web_config.py",
        "return ssl.CERT_REQUIRED",
        "return ssl.CERT_OPTIONAL",
        "RequireAndVerifyClientCert lets in a client that presents no certificate.",
    ),
    # Generated command lines and configuration.
    PlantedBug(
        "vllm-host-inverted",
        "launcher/vllm_server/command.py",
        "if not target.host_given:",
        "if target.host_given:",
        "vLLM listens on all interfaces (its default) unless --host is given, and gets --host twice if it is.",
    ),
    PlantedBug(
        "vllm-secret-in-argv",
        "launcher/vllm_server/command.py",
        "env[option.variable] = value  # vLLM reads it from here; argv is readable by every local user",
        "args = (*args, option.flag, value)",
        "The API key and hub token go on vLLM's command line, readable by every local user.",
    ),
    PlantedBug(
        "exporter-no-collector-enables",
        "launcher/stack/exporter_child.py",
        'command += tuple(f"--no-collector.{name}" for name in settings.no_exporter_collector)',
        'command += tuple(f"--collector.{name}" for name in settings.no_exporter_collector)',
        "--no-exporter-collector X turns collector X on in the exporter's command line.",
    ),
    PlantedBug(
        "scrape-timeout-over-interval",
        "launcher/stack/prometheus_child.py",
        'config["global"]["scrape_timeout"] = prometheus_duration(min(interval * 0.8, 10.0))',
        'config["global"]["scrape_timeout"] = prometheus_duration(max(interval * 0.8, 10.0))',
        "A scrape interval under 10 s gets a scrape timeout above it, which Prometheus refuses.",
    ),
    PlantedBug(
        "scrape-password-inline",
        "launcher/stack/secured_endpoint.py",
        'settings["basic_auth"] = {"username": self.username, "password_file": str(self.password_file)}',
        'settings["basic_auth"] = {"username": self.username, "password": self.password}',
        "The launcher's exporter password is written into prometheus.yml instead of a 0600 file.",
    ),
    PlantedBug(
        "heartbeat-reaches-receivers",
        "launcher/stack/alertmanager_config.py",
        '"continue": False,',
        '"continue": True,',
        "The always-firing Heartbeat also goes to the normal webhooks, every minute.",
    ),
    PlantedBug(
        "compose-retention-lost",
        "launcher/stack/docker.py",
        '"SWM_PROMETHEUS_RETENTION_SIZE": settings.prometheus_retention_size,',
        "",
        "--prometheus-retention-size is ignored by the compose stack (it keeps its 2GB default).",
    ),
    PlantedBug(
        "systemd-restarts-needs-a-person",
        "launcher/commands/systemd_unit.py",
        "RestartPreventExitStatus=2 3 4",
        "RestartPreventExitStatus=2 3",
        "systemd restarts the launcher after exit 4 (a GPU that needs a person), again and again.",
    ),
    PlantedBug(
        "kubernetes-dashboards-unlabelled",
        "observability/kubernetes_manifests.py",
        '"labels": {**LABELS, "grafana_dashboard": "1"},',
        '"labels": LABELS,',
        "Grafana's sidecar in kube-prometheus-stack never loads the dashboards.",
    ),
    PlantedBug(
        "slo-le-label",
        "observability/slo_rules.py",
        "return repr(float(threshold))",
        'return f"{threshold:g}"',
        'A whole-number latency threshold selects le="1", a series prometheus_client never writes ("1.0").',
    ),
)
