"""deploy/docker-compose.yaml, validated offline by the real Compose binary and the compose-spec schema.

There is no Docker engine here, so nothing is started.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "docker-compose.yaml"
BIN = Path(sys.executable).parent


def compose_config(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "docker-compose"), "-f", str(COMPOSE), *args, "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_real_compose_accepts_the_file_with_and_without_the_model_profile():
    env = {"SWM_GRAFANA_ADMIN_PASSWORD": "from-the-launcher"}
    for args in ((), ("--profile", "model")):
        result = compose_config(*args, env=env)
        assert result.returncode == 0, result.stderr


def test_compose_refuses_to_run_grafana_without_a_password():
    env = {key: value for key, value in os.environ.items() if key != "SWM_GRAFANA_ADMIN_PASSWORD"}
    result = subprocess.run(
        [str(BIN / "docker-compose"), "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert result.returncode != 0
    assert "SWM_GRAFANA_ADMIN_PASSWORD" in result.stderr


def test_compose_spec_schema():
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pinned_images_host_networking_loopback_and_named_volumes():
    document = yaml.safe_load(COMPOSE.read_text())
    services = document["services"]
    for name in ("prometheus", "alertmanager", "grafana"):
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), image
        assert services[name]["network_mode"] == "host"
        assert "ports" not in services[name]
    assert any("--web.listen-address=127.0.0.1:" in arg for arg in services["prometheus"]["command"])
    assert services["grafana"]["environment"]["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
    assert {"prometheus-data", "grafana-data"} <= set(document["volumes"])
    assert "prometheus-data:/prometheus" in services["prometheus"]["volumes"]
    assert "grafana-data:/var/lib/grafana" in services["grafana"]["volumes"]
    assert "host.docker.internal" not in COMPOSE.read_text()


def test_provisioning_is_mounted_from_observability_not_copied():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    sources = [
        volume["source"]
        for service in ("prometheus", "grafana")
        for volume in services[service]["volumes"]
        if isinstance(volume, dict)
    ]
    assert any(source.endswith("observability/prometheus/rules}") for source in sources)  # SWM_RULES_DIR's default
    assert any(source.endswith("/grafana/provisioning") for source in sources)
    assert any(source.endswith("observability/grafana/dashboards}") for source in sources)  # rendered ones, or these
    assert not (REPO / "deploy" / "grafana").exists() and not (REPO / "deploy" / "prometheus").exists()


def test_model_profile_reserves_a_gpu_and_uses_the_image():
    vllm = yaml.safe_load(COMPOSE.read_text())["services"]["vllm"]
    assert vllm["profiles"] == ["model"]
    assert vllm["build"]["dockerfile"] == "Dockerfile.cuda"
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert vllm["pid"] == "host"


def test_grafana_is_hardened():
    env_file = (REPO / "observability" / "grafana" / "grafana.env").read_text()
    assert "GF_AUTH_ANONYMOUS_ENABLED=false" in env_file
    assert "GF_ANALYTICS_REPORTING_ENABLED=false" in env_file
    assert "admin/admin" not in COMPOSE.read_text()


def test_alertmanager_listens_on_loopback_without_gossip_and_reads_a_mounted_config():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    alertmanager = services["alertmanager"]
    command = alertmanager["command"]
    assert any(arg.startswith("--web.listen-address=127.0.0.1:") for arg in command)
    assert "--cluster.listen-address=" in command
    assert "alertmanager-data:/alertmanager" in alertmanager["volumes"]
    config = next(volume for volume in alertmanager["volumes"] if isinstance(volume, dict))
    assert config["source"] == "${SWM_ALERTMANAGER_CONFIG:-../observability/alertmanager/alertmanager.yml}"
    assert config["read_only"] is True


def test_the_shipped_alertmanager_config_is_what_the_launcher_generates_with_no_receiver():
    """Compose alone mounts observability/alertmanager/alertmanager.yml; the launcher writes its own."""
    from launcher.settings.command_line import parse_command_line
    from launcher.settings.settings import load_settings
    from launcher.stack.alertmanager_config import generated_config

    shipped = yaml.safe_load((REPO / "observability" / "alertmanager" / "alertmanager.yml").read_text())
    assert shipped == generated_config(load_settings(parse_command_line([])))


def resolved_services() -> dict:
    """Every service as the real Compose binary reads it (anchors and merges resolved), the model's too."""
    result = subprocess.run(
        [str(BIN / "docker-compose"), "-f", str(COMPOSE), "--profile", "model", "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SWM_GRAFANA_ADMIN_PASSWORD": "from-the-launcher"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]


def test_every_service_drops_every_capability_and_cannot_gain_privileges():
    """None needs a capability: Prometheus, Alertmanager and Grafana run as their own non-root users on
    unprivileged ports, and vLLM reaches its GPUs through the NVIDIA runtime's device nodes, not a capability.
    no-new-privileges keeps a setuid binary in an image from gaining any back."""
    services = resolved_services()
    assert set(services) == {"prometheus", "alertmanager", "grafana", "vllm"}
    for name, service in services.items():
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert not service.get("cap_add") and not service.get("privileged"), name
