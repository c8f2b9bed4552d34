"""The rule files Prometheus loads, written into the state dir: the shipped rules with this run's runbook
base URL, the SLO rules rendered from this run's objectives, and the user's --extra-rules.

Native Prometheus and docker compose both read this one directory; Kubernetes reads the shipped files
(observability/prometheus/rules), which hold the defaults.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from launcher import defaults
from launcher.errors import UsageError
from launcher.file_writes import write_for_container
from launcher.settings.settings import Settings
from launcher.state_layout import StateLayout
from observability.files import PROMETHEUS_RULES, SLO_RULES
from observability.slo_rules import bucket_problem, render

_PROMTOOL_TIMEOUT_S = 30.0


def rules_dir(layout: StateLayout) -> Path:
    return layout.generated / "prometheus" / "rules"


def check_objectives(settings: Settings) -> None:
    for objective in settings.objectives.all():
        problem = bucket_problem(objective)
        if problem:
            raise UsageError(problem)


def check_extra_rules(settings: Settings, promtool: Path | None) -> None:
    """Each --extra-rules file exists and, where promtool is at hand, passes `promtool check rules`."""
    for path in settings.extra_rules:
        if not path.is_file():
            raise UsageError(f"--extra-rules {path}: no such file")
        if promtool is None:
            continue
        try:
            result = subprocess.run(
                [str(promtool), "check", "rules", str(path)],
                capture_output=True,
                text=True,
                timeout=_PROMTOOL_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue  # no verdict from promtool: Prometheus itself will say
        if result.returncode != 0:
            detail = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
            raise UsageError(f"--extra-rules {path}: {detail[-1] if detail else 'promtool check rules failed'}")


def write_rules(settings: Settings, layout: StateLayout) -> Path:
    directory = rules_dir(layout)
    shutil.rmtree(directory, ignore_errors=True)  # a removed --extra-rules file must not linger
    for shipped in sorted(PROMETHEUS_RULES.glob("*.yml")):
        if shipped.name == SLO_RULES.name:
            continue
        text = shipped.read_text().replace(defaults.RUNBOOK_BASE_URL, settings.runbook_base_url)
        write_for_container(directory / shipped.name, text)
    write_for_container(directory / SLO_RULES.name, render(settings.objectives, settings.runbook_base_url))
    for index, extra in enumerate(settings.extra_rules):
        write_for_container(directory / f"extra-{index}-{extra.stem}.yml", extra.read_text())
    return directory
