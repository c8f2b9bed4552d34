"""The environment every helper process starts with (exporter, Prometheus, Alertmanager, Grafana, docker,
promtool, amtool, py-spy, the orphan guard): built from an allowlist, so that HF_TOKEN, VLLM_API_KEY and
cloud credentials never reach them.

vLLM itself gets the launcher's whole environment: it needs the hub token and its own settings. Probes that
run vLLM's code without serving (its --help, the tiny model's build) get that environment without secrets.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

ALLOWED = frozenset(
    {
        # Where things are, and how text and time read.
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM", "NO_COLOR",
        "HOSTNAME", "NODE_NAME",  # the exporter's hostname label, in Kubernetes from the downward API
        "STATE_DIRECTORY", "CACHE_DIRECTORY",  # systemd's
        # The exporter and the orphan guard are Python; NVML is found through the loader.
        "PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "LD_LIBRARY_PATH",
        "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES",
        # Alertmanager reaches webhooks through the same proxy and trust store as everything else.
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
        "SSL_CERT_FILE", "SSL_CERT_DIR",
        # docker compose finds its engine.
        "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
    }
)  # fmt: skip
ALLOWED_PREFIXES = ("LC_", "XDG_", "SWM_")

# A variable whose name says it holds a secret: HF_TOKEN, VLLM_API_KEY, AWS_SECRET_ACCESS_KEY, PGPASSWORD ...
SECRET_VARIABLE = re.compile(r"(?i)(key|token|secret|password|passwd|credential)")
_NAMES_A_PLACE = ("_FILE", "_PATH", "_DIR")  # GOOGLE_APPLICATION_CREDENTIALS_FILE names a file, not a secret


def helper_environment(extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allowed part of `base` (the launcher's environment), plus `extra`, which the caller vouches for."""
    source = os.environ if base is None else base
    kept = {
        name: value
        for name, value in source.items()
        if name in ALLOWED or (name.startswith(ALLOWED_PREFIXES) and not names_a_secret(name))
    }
    return {**kept, **(extra or {})}


def names_a_secret(name: str) -> bool:
    return bool(SECRET_VARIABLE.search(name)) and not name.endswith(_NAMES_A_PLACE)


def without_secrets(environment: Mapping[str, str]) -> dict[str, str]:
    """vLLM's environment for a run that serves nothing: every setting that shapes vLLM, no secret."""
    return {name: value for name, value in environment.items() if not names_a_secret(name)}
