"""Prometheus' own verdict on a generated prometheus.yml (`promtool check config`), as one line: what the
launcher cannot judge itself in a user's remote_write entries (unknown keys, queue settings, relabelling,
two kinds of auth at once) is refused before anything starts, by the parser that would refuse it later."""

from __future__ import annotations

import subprocess
from pathlib import Path

from launcher.errors import UsageError
from launcher.helper_environment import helper_environment
from launcher.installed_tools import find_tool

_PROMTOOL_TIMEOUT_S = 30.0


def check_prometheus_config(path: Path, what: str) -> None:
    """`what` names the options the user gave (--remote-write-config FILE); without promtool, Prometheus
    itself judges the file when it starts."""
    promtool = find_tool("promtool")
    if promtool is None:
        return
    try:
        # --syntax-only: the rule files and file_sd lists it names are the launcher's own, checked elsewhere.
        result = subprocess.run(
            [str(promtool), "check", "config", "--syntax-only", str(path)],
            capture_output=True,
            text=True,
            timeout=_PROMTOOL_TIMEOUT_S,
            check=False,
            env=helper_environment(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return  # no verdict from promtool: Prometheus itself will say
    if result.returncode != 0:
        # "  FAILED: parsing YAML file PATH: yaml: unmarshal errors:" and then the errors, one a line.
        output = " ".join(line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip())
        detail = output.split("FAILED:", 1)[-1].strip().replace(str(path), path.name) or "promtool check config failed"
        raise UsageError(f"{what}: Prometheus refuses the generated {path.name} (promtool check config): {detail}")
