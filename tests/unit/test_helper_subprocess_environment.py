"""A secret in the launcher's environment reaches no helper it runs, however short-lived: each stand-in below
records the environment it was started with, as the real promtool, amtool, docker or py-spy would see it."""

import json
import os
import sys
import time
from pathlib import Path

import pytest

from launcher.incidents.stacks import read_stacks
from launcher.settings.command_line import parse_command_line
from launcher.settings.settings import merge_settings
from launcher.stack.alertmanager_child import check_alertmanager
from launcher.stack.alertmanager_config import check_config
from launcher.stack.docker import docker_engine_answers
from launcher.stack.prometheus_rules import check_extra_rules
from launcher.supervision.orphan_guard import OrphanGuard
from launcher.vllm_server.capabilities import learn_capabilities

SECRETS = {
    "HF_TOKEN": "hf_not_for_helpers",
    "VLLM_API_KEY": "sk-not-for-helpers",
    "AWS_SECRET_ACCESS_KEY": "aws-not-for-helpers",
}

# Records its environment, then answers as the tool it stands in for would, well enough for the caller.
STAND_IN = """#!{python}
import json, os, sys
with open({record!r}, "w") as handle:
    json.dump(dict(os.environ), handle)
if "--help=all" in sys.argv:
    print("options:\\n  --port PORT  the port")
elif "dump" in sys.argv:
    print("[]")
"""


@pytest.fixture
def secrets_in_environment(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def stand_in(tmp_path: Path, name: str) -> tuple[Path, Path]:
    record = tmp_path / f"{name}.environment.json"
    tool = tmp_path / "bin" / name
    tool.parent.mkdir(exist_ok=True)
    tool.write_text(STAND_IN.format(python=sys.executable, record=str(record)))
    tool.chmod(0o755)
    return tool, record


def leaked(record: Path) -> set[str]:
    environment = json.loads(record.read_text())
    return {name for name, value in SECRETS.items() if environment.get(name) == value}


def test_promtool_gets_no_secret(tmp_path, secrets_in_environment):
    promtool, record = stand_in(tmp_path, "promtool")
    rules = tmp_path / "extra.yml"
    rules.write_text("groups: []\n")
    check_extra_rules(merge_settings(parse_command_line(["--extra-rules", str(rules)])), promtool)
    assert leaked(record) == set()


def test_amtool_gets_no_secret(tmp_path, secrets_in_environment):
    amtool, record = stand_in(tmp_path, "amtool")
    config = tmp_path / "alertmanager.yml"
    config.write_text("route: {receiver: x}\nreceivers: [{name: x}]\n")
    check_config(config, amtool)
    assert leaked(record) == set()


def test_alertmanager_version_probe_gets_no_secret(tmp_path, secrets_in_environment):
    alertmanager, record = stand_in(tmp_path, "alertmanager")
    check_alertmanager(alertmanager)
    assert leaked(record) == set()


def test_docker_info_gets_no_secret(tmp_path, secrets_in_environment, monkeypatch):
    docker, record = stand_in(tmp_path, "docker")
    monkeypatch.setenv("PATH", f"{docker.parent}{os.pathsep}{os.environ['PATH']}")
    assert docker_engine_answers()
    assert leaked(record) == set()


def test_py_spy_gets_no_secret(tmp_path, secrets_in_environment):
    py_spy, record = stand_in(tmp_path, "py-spy")
    read_stacks(py_spy, {os.getpid(): "test"}, timeout_s=10)
    assert leaked(record) == set()


def test_vllm_help_probe_gets_vllm_settings_but_no_secret(tmp_path, secrets_in_environment):
    vllm, record = stand_in(tmp_path, "vllm")
    environment = {**os.environ, "VLLM_PLUGINS": "mine"}
    learn_capabilities(vllm, tmp_path / "cache", environment)
    assert leaked(record) == set()
    assert json.loads(record.read_text())["VLLM_PLUGINS"] == "mine"


def test_the_orphan_guard_gets_no_secret(secrets_in_environment):
    guard = OrphanGuard()
    guard.start()
    try:
        assert guard.pid is not None
        deadline = time.monotonic() + 10
        while True:  # /proc/PID/environ is the exec'd environment once the guard runs Python
            environ = Path(f"/proc/{guard.pid}/environ").read_bytes()
            if b"PATH=" in environ or time.monotonic() > deadline:
                break
            time.sleep(0.01)
    finally:
        guard.close()
    variables = dict(entry.split("=", 1) for entry in environ.decode().split("\0") if "=" in entry)
    assert {name for name, value in SECRETS.items() if variables.get(name) == value} == set()
    assert "PATH" in variables
