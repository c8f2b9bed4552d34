"""--stack docker and the Grafana half of --stack native, against STAND-INS for what cannot run here:
the Docker engine (tests/support/standins/bin/docker) and the Grafana server (tests/support/standins/bin/grafana).
Native Prometheus is real and tested in tests/integration/test_stack_native.py."""

import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from launcher.errors import PreflightError
from launcher.settings.command_line import parse_command_line
from launcher.settings.settings import merge_settings
from launcher.stack.grafana_credentials import describe
from launcher.stack.plan import plan_stack, resolve_mode
from launcher.state_layout import StateLayout
from launcher.states import State
from launcher.supervision.probe_runner import ProbeRunner
from launcher.supervision.restart_policy import RestartPolicy
from launcher.supervision.supervised_child import SupervisedChild
from tests.support.launcher_process import REPO_ROOT, free_port

SWM_STANDIN_BIN = REPO_ROOT / "tests" / "support" / "standins" / "bin"


@pytest.fixture
def standin_path(monkeypatch, tmp_path):
    # This Python's bin next: the stand-ins' `python3`, with PyYAML, and the real Compose binary beside it.
    monkeypatch.setenv(
        "PATH", os.pathsep.join((str(SWM_STANDIN_BIN), str(Path(sys.executable).parent), os.environ["PATH"]))
    )
    monkeypatch.setenv("SWM_STANDIN_DOCKER_STATE", str(tmp_path / "docker-standin"))
    monkeypatch.setenv("SWM_STANDIN_REPO", str(REPO_ROOT))
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.delenv("SWM_COMPOSE_FILE", raising=False)
    return tmp_path / "docker-standin"


def settings_for(tmp_path, *extra):
    argv = [
        "--state-dir",
        str(tmp_path / "state"),
        "--prometheus-port",
        str(free_port()),
        "--grafana-port",
        str(free_port()),
        "--alertmanager-port",
        str(free_port()),
        *extra,
    ]
    settings = merge_settings(parse_command_line(argv))
    StateLayout(settings.state_dir).ensure()
    return settings


def run_until(child, condition, timeout=30):
    deadline = time.monotonic() + timeout
    child.start(time.monotonic())
    while time.monotonic() < deadline:
        child.tick(time.monotonic())
        if condition(child):
            return
        time.sleep(0.05)
    raise AssertionError(f"state {child.state}")


def supervised(spec, guard):
    return SupervisedChild(spec, RestartPolicy(2, 60, 0.05, 0.1), guard, ProbeRunner(), 2.0)


def ttft_tile(dashboard: Path) -> dict:
    panels = json.loads(dashboard.read_text())["panels"]
    return next(panel for panel in panels if panel["title"].startswith("TTFT p"))


def calls(state_dir):
    return [json.loads(line) for line in (state_dir / "calls.jsonl").read_text().splitlines()]


def test_docker_mode_runs_compose_up_waits_for_both_then_down_keeping_volumes(tmp_path, standin_path, guard):
    settings = settings_for(tmp_path, "--stack", "docker")
    plan = plan_stack(settings, StateLayout(settings.state_dir))
    assert plan.mode == "docker"
    child = supervised(plan.children[0], guard)
    run_until(child, lambda c: c.state == State.HEALTHY)
    # The stand-in's containers come up one after another, each health path on its own port only: healthy
    # means every one was probed where it answers, and answered.
    probes = [json.loads(line) for line in (standin_path / "probes.jsonl").read_text().splitlines()]
    assert [probe for probe in probes if probe["status"] == 404] == []
    assert {probe["program"] for probe in probes if probe["status"] == 200} == {"prometheus", "alertmanager", "grafana"}
    up = next(call for call in calls(standin_path) if "up" in call["argv"])
    assert up["argv"][:5] == ["compose", "-p", up["argv"][2], "-f", str(REPO_ROOT / "deploy" / "docker-compose.yaml")]
    assert up["argv"][2].startswith("swm-") and up["argv"][5:] == ["up", "-d", "--remove-orphans"]
    assert up["env"]["SWM_PROMETHEUS_PORT"] == str(settings.prometheus_port)
    assert up["env"]["SWM_STATE_DIR"] == str(settings.state_dir)
    rendered = Path(up["env"]["SWM_GRAFANA_DASHBOARDS_DIR"])
    assert rendered.is_relative_to(settings.state_dir) and (rendered / "swm-vllm-serving.json").is_file()
    assert up["env"]["SWM_GRAFANA_ADMIN_PASSWORD"] == plan.credentials.password
    password_file = settings.state_dir / "grafana-admin-password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    lines = plan.announcements["stack"]
    # Not a terminal here (as under systemd, where stderr is the journal): the file is named, not the password.
    assert not any(plan.credentials.password in line for line in lines)
    assert any(str(password_file) in line and "not logged" in line for line in lines)
    assert plan.credentials.password in describe(plan.credentials, on_terminal=True)

    child.stop()
    for hook in plan.on_shutdown:
        hook()
    down = [call["argv"] for call in calls(standin_path) if "down" in call["argv"]]
    assert down and "-v" not in down[0] and "--volumes" not in down[0]

    again = plan_stack(settings, StateLayout(settings.state_dir))
    assert not again.credentials.new
    assert not any(again.credentials.password in line for line in again.announcements["stack"])


def test_keep_stack_leaves_it_running(tmp_path, standin_path):
    settings = settings_for(tmp_path, "--stack", "docker", "--keep-stack")
    assert plan_stack(settings, StateLayout(settings.state_dir)).on_shutdown == []


def test_a_failing_stack_is_given_up_on_without_an_exception(tmp_path, standin_path, guard, monkeypatch):
    monkeypatch.setenv("SWM_STANDIN_DOCKER_UP_FAILS", "1")
    settings = settings_for(tmp_path, "--stack", "docker")
    child = supervised(plan_stack(settings, StateLayout(settings.state_dir)).children[0], guard)
    run_until(child, lambda c: c.state == State.FAILED)
    assert not child.spec.critical
    assert "twice without becoming healthy" in child.outcome.message


def test_auto_prefers_docker_then_native_then_none(tmp_path, standin_path, monkeypatch):
    assert resolve_mode("auto") == "docker"
    monkeypatch.setenv("SWM_STANDIN_DOCKER_DOWN", "1")
    assert resolve_mode("auto") == "native"  # the venv's prometheus (scripts/setup.sh links it there)
    monkeypatch.setattr("launcher.stack.plan.find_prometheus", lambda: None)
    assert resolve_mode("auto") == "none"


def test_docker_mode_without_an_engine_is_a_preflight_error(tmp_path, standin_path, monkeypatch):
    monkeypatch.setenv("SWM_STANDIN_DOCKER_DOWN", "1")
    settings = settings_for(tmp_path, "--stack", "docker")
    with pytest.raises(PreflightError, match="no Docker engine"):
        plan_stack(settings, StateLayout(settings.state_dir))


def test_native_mode_runs_grafana_provisioned_from_observability(tmp_path, standin_path, guard, monkeypatch):
    dump = tmp_path / "grafana-standin.json"
    monkeypatch.setenv("SWM_STANDIN_GRAFANA_DUMP", str(dump))
    settings = settings_for(tmp_path, "--stack", "native", "--slo-ttft-threshold", "5")
    plan = plan_stack(settings, StateLayout(settings.state_dir))
    assert [child.name for child in plan.children] == ["prometheus", "alertmanager", "grafana"]
    grafana = supervised(plan.children[2], guard)
    run_until(grafana, lambda c: c.state == State.HEALTHY)
    grafana.stop()
    started = json.loads(dump.read_text())
    env = started["env"]
    assert started["argv"][0] == "server"
    assert env["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_ANALYTICS_REPORTING_ENABLED"] == "false"
    assert env["GF_PATHS_PROVISIONING"] == str(REPO_ROOT / "observability" / "grafana" / "provisioning")
    # The dashboards are rendered for this run: the TTFT tile marks the user's 5 s, not the shipped 2.5 s.
    dashboards = settings.state_dir / "generated" / "grafana" / "dashboards"
    assert env["SWM_DASHBOARDS_DIR"] == str(dashboards)
    assert env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == str(dashboards / "swm-vllm-serving.json")
    assert sorted(path.name for path in dashboards.glob("*.json")) == sorted(
        path.name for path in (REPO_ROOT / "observability" / "grafana" / "dashboards").glob("*.json")
    )
    assert ttft_tile(dashboards / "swm-vllm-serving.json")["fieldConfig"]["defaults"]["thresholds"]["steps"][-1] == {
        "color": "red",
        "value": 5.0,
    }
    assert env["SWM_PROMETHEUS_URL"] == f"http://127.0.0.1:{settings.prometheus_port}"
    assert env["SWM_ALERTMANAGER_URL"] == f"http://127.0.0.1:{settings.alertmanager_port}"
    # What the stand-in read from its provisioning, with the variables replaced as Grafana replaces them.
    provisioning = started["provisioning"]
    assert {source["name"]: source["url"] for source in provisioning["datasources"]} == {
        "Prometheus": f"http://127.0.0.1:{settings.prometheus_port}",
        "Alertmanager": f"http://127.0.0.1:{settings.alertmanager_port}",
    }
    assert sorted(provisioning["dashboards"]) == sorted(path.name for path in dashboards.glob("*.json"))
    password_file = Path(env["GF_SECURITY_ADMIN_PASSWORD__FILE"])
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env


def test_native_config_sets_the_interval_and_reads_the_rules_rendered_for_this_run(tmp_path):
    import yaml

    from launcher.stack.prometheus_child import native_config, write_native_config

    extra = tmp_path / "mine.yml"
    extra.write_text("groups: []\n")
    settings = settings_for(
        tmp_path,
        "--scrape-interval",
        "1",
        "--runbook-base-url",
        "https://wiki.example/runbooks",
        "--slo-ttft-threshold",
        "5",
        "--extra-rules",
        str(extra),
    )
    layout = StateLayout(settings.state_dir)
    config = native_config(settings, layout)
    assert config["global"]["scrape_interval"] == "1s"
    assert config["global"]["scrape_timeout"] == "800ms"  # Prometheus refuses "0.8s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert "scrape_interval" not in jobs["vllm"] and jobs["prometheus"]["scrape_interval"] == "30s"
    slow = native_config(settings_for(tmp_path, "--scrape-interval", "60"), layout)
    assert {job["job_name"]: job["scrape_interval"] for job in slow["scrape_configs"] if "scrape_interval" in job} == {
        "prometheus": "60s",
        "alertmanager": "60s",
    }
    rules = settings.state_dir / "generated" / "prometheus" / "rules"
    assert config["rule_files"] == [str(rules / "*.yml")]
    assert config["alerting"]["alertmanagers"][0]["file_sd_configs"][0]["files"] == [
        str(settings.state_dir / "generated" / "prometheus" / "targets" / "alertmanager*.json")
    ]
    write_native_config(settings, layout)
    assert sorted(path.name for path in rules.iterdir()) == [
        "alerts.yml",
        "efficiency.yml",
        "extra-0-mine.yml",
        "recording.yml",
        "remote_write.yml",
        "slo.yml",
    ]
    assert "https://wiki.example/runbooks#vllmtargetdown" in (rules / "alerts.yml").read_text()
    slo = (rules / "slo.yml").read_text()
    assert 'vllm:time_to_first_token_seconds_bucket{le="5.0"}' in slo
    assert "https://wiki.example/runbooks#vllmslottftbudgetburn" in slo
    shipped = yaml.safe_load((REPO_ROOT / "observability" / "prometheus" / "prometheus.yml").read_text())
    assert [job["job_name"] for job in config["scrape_configs"]] == [
        job["job_name"] for job in shipped["scrape_configs"]
    ]


def test_prometheus_beyond_loopback_needs_a_web_config_and_then_runs_behind_it(tmp_path):
    from launcher.errors import UsageError
    from launcher.stack.prometheus_child import native_config, prometheus_child
    from launcher.stack.secured_endpoint import StackAccess, secure_endpoint
    from tests.support.tls_files import bcrypt_hash, self_signed

    with pytest.raises(UsageError, match=r"--prometheus-host 0\.0\.0\.0 binds Prometheus beyond loopback"):
        plan_stack(settings_for(tmp_path, "--stack", "native", "--prometheus-host", "0.0.0.0"), StateLayout(tmp_path))
    cert, key = self_signed(tmp_path)
    web = tmp_path / "prometheus-web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\nbasic_auth_users:\n  ops: '{bcrypt_hash('pw')}'\n"
    )
    settings = settings_for(tmp_path, "--prometheus-host", "0.0.0.0", "--prometheus-web-config", str(web))
    layout = StateLayout(settings.state_dir)
    access = StackAccess(prometheus=secure_endpoint("prometheus", settings.prometheus_web_config, layout))
    child = prometheus_child(settings, layout, Path("/usr/bin/prometheus"), access)
    assert f"--web.listen-address=0.0.0.0:{settings.prometheus_port}" in child.command
    assert any(arg.startswith("--web.config.file=") for arg in child.command)
    assert "--web.enable-lifecycle" not in child.command
    assert child.health_urls == (f"https://127.0.0.1:{settings.prometheus_port}/-/ready",)
    assert child.health_authorization.startswith("Basic ")
    job = next(
        job for job in native_config(settings, layout, access)["scrape_configs"] if job["job_name"] == "prometheus"
    )
    assert job["scheme"] == "https" and job["basic_auth"]["username"] == "serve-with-monitoring"
    assert stat.S_IMODE(Path(job["basic_auth"]["password_file"]).stat().st_mode) == 0o600
