"""What the docker stack hands compose, resolved by the real Compose binary (no engine needed for `config`):
every ${SWM_*} the compose file reads is set by the launcher and none it sets is unread, each value lands
where the file says (ports, mounts, --prometheus-retention-size), and the Prometheus configuration written
for compose passes promtool. The native stack's Prometheus gets the same retention size."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from launcher.stack.docker import compose_environment, write_compose_prometheus_config
from launcher.stack.prometheus_child import prometheus_child
from launcher.stack.secured_endpoint import OPEN
from launcher.state_layout import StateLayout
from tests.support.launcher_process import REPO_ROOT
from tests.unit.test_stack_modes import settings_for as stack_settings_for

COMPOSE = REPO_ROOT / "deploy" / "docker-compose.yaml"
BIN = Path(sys.executable).parent
# Read only by the optional `--profile model` service, for people who run compose alone: the launcher runs
# vLLM itself and never starts that service.
USERS_OWN = {"SWM_MODEL", "SWM_MAX_MODEL_LEN"}


def settings_for(tmp_path):
    return stack_settings_for(tmp_path, "--stack", "docker", "--prometheus-retention-size", "7GB")


def resolved(environment: dict[str, str]) -> dict:
    result = subprocess.run(
        [str(BIN / "docker-compose"), "-f", str(COMPOSE), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    )
    return json.loads(result.stdout)


def test_every_variable_compose_reads_is_set_by_the_launcher_and_none_it_sets_is_unread(tmp_path):
    settings = settings_for(tmp_path)
    read = set(re.findall(r"\$\{(SWM_\w+)", COMPOSE.read_text()))
    given = {
        name for name in compose_environment(settings, StateLayout(settings.state_dir), "pw") if name.startswith("SWM_")
    }
    assert read - USERS_OWN == given


def test_each_value_lands_where_the_compose_file_uses_it(tmp_path):
    settings = settings_for(tmp_path)
    layout = StateLayout(settings.state_dir)
    write_compose_prometheus_config(layout, OPEN)
    environment = compose_environment(settings, layout, "from-the-launcher")
    services = resolved(environment)["services"]

    prometheus = services["prometheus"]
    assert "--storage.tsdb.retention.size=7GB" in prometheus["command"]
    assert f"--web.listen-address=127.0.0.1:{settings.prometheus_port}" in prometheus["command"]
    mounts = {volume["target"]: volume.get("source") for volume in prometheus["volumes"]}
    assert environment["SWM_PROMETHEUS_CONFIG"] in mounts.values()
    assert environment["SWM_RULES_DIR"] in mounts.values()
    assert f"{settings.state_dir}/generated/prometheus/targets" in mounts.values()

    alertmanager = services["alertmanager"]
    assert f"--web.listen-address=127.0.0.1:{settings.alertmanager_port}" in alertmanager["command"]
    assert environment["SWM_ALERTMANAGER_CONFIG"] in [volume.get("source") for volume in alertmanager["volumes"]]

    grafana = services["grafana"]
    assert grafana["environment"]["GF_SERVER_HTTP_PORT"] == str(settings.grafana_port)
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "from-the-launcher"
    assert grafana["environment"]["SWM_PROMETHEUS_URL"] == f"http://127.0.0.1:{settings.prometheus_port}"
    assert environment["SWM_GRAFANA_DASHBOARDS_DIR"] in [volume.get("source") for volume in grafana["volumes"]]


def test_the_prometheus_configuration_written_for_compose_passes_promtool(tmp_path):
    settings = settings_for(tmp_path)
    path = write_compose_prometheus_config(StateLayout(settings.state_dir), OPEN)
    # Syntax only: the files it names (rules, targets) are paths inside the container.
    result = subprocess.run(
        [str(BIN / "promtool"), "check", "config", "--syntax-only", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_native_prometheus_keeps_what_retention_size_allows(tmp_path):
    settings = settings_for(tmp_path)
    child = prometheus_child(settings, StateLayout(settings.state_dir), Path("/usr/bin/prometheus"))
    assert "--storage.tsdb.retention.size=7GB" in child.command
