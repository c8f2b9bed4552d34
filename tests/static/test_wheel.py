"""The built wheel carries everything the runtime reads: built from this checkout, installed into a fresh
venv outside it, its console script runs there, and `--stack docker` hands `docker compose` the compose
file the wheel installed (the docker STAND-IN, tests/support/standins/bin/docker, answers; no engine here). The
real Compose binary then loads that file with the launcher's environment, which finds every missing file.

Offline: setuptools and pip are the project venv's, and the runtime dependencies come from it too, through
a path line in the new venv (its own site-packages, where the wheel went, is searched first)."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.launcher_process import REPO_ROOT, free_port

STANDIN_BIN = REPO_ROOT / "tests" / "support" / "standins" / "bin"
# What a build reads: the same list Dockerfile.cuda copies.
BUILD_INPUTS = ("pyproject.toml", "README.md", "launcher", "observability", "deploy/docker-compose.yaml")
PACKAGES = ("launcher", "observability")
COMPOSE_IN_WHEEL = "serve_with_monitoring-0.1.0.data/data/share/serve-with-monitoring/docker-compose.yaml"

# The launcher's own planning: vLLM's pre-flight comes first in `serve-with-monitoring --stack docker`, and
# there is no vLLM in the new venv, so this runs the docker stack's plan and its shutdown (`compose down`).
PLAN_DOCKER_STACK = """
import json, sys
from launcher.settings.command_line import parse_command_line
from launcher.settings.settings import merge_settings
from launcher.stack.plan import plan_stack
from launcher.state_layout import StateLayout
settings = merge_settings(parse_command_line(sys.argv[1:]))
layout = StateLayout(settings.state_dir)
layout.ensure()
plan = plan_stack(settings, layout)
for hook in plan.on_shutdown:
    hook()
child = plan.children[0]
print(json.dumps({"mode": plan.mode, "command": list(child.command), "environment": child.environment}))
"""


def _stage_sources(stage: Path) -> None:
    # setuptools builds in the source tree and packs whatever an earlier build left in build/lib; a fresh
    # copy builds only what is there now, and leaves the checkout (shared with other test runs) untouched.
    for name in BUILD_INPUTS:
        source, target = REPO_ROOT / name, stage / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target)


def _run(argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(arg) for arg in argv], capture_output=True, text=True, timeout=120, **kwargs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    stage, dist, venv = root / "source", root / "dist", root / "venv"
    _stage_sources(stage)
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, stage])
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("serve_with_monitoring-*.whl")

    made = _run([sys.executable, "-m", "venv", "--without-pip", venv])
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    pip_install = [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel]
    result = _run(pip_install)
    assert result.returncode == 0, result.stderr
    site_packages = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    (site_packages / "project-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")

    # Nothing of the checkout on the path: no PYTHONPATH, and a working directory outside it.
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV", "SWM_COMPOSE_FILE", "SWM_LOG_LEVEL")
    }
    environment["PATH"] = f"{STANDIN_BIN}{os.pathsep}{venv / 'bin'}{os.pathsep}{environment['PATH']}"
    work = root / "work"
    work.mkdir()
    return SimpleNamespace(
        wheel=wheel,
        stage=stage,
        venv=venv.resolve(),
        python=python,
        script=venv / "bin" / "serve-with-monitoring",
        site_packages=site_packages.resolve(),
        environment=environment,
        work=work,
    )


def run_in_venv(installed, argv, extra_env=None) -> subprocess.CompletedProcess:
    return _run(argv, cwd=installed.work, env={**installed.environment, **(extra_env or {})})


def test_the_wheel_carries_every_file_of_both_packages_and_the_compose_file(installed):
    in_wheel = set(zipfile.ZipFile(installed.wheel).namelist())
    expected = {
        path.relative_to(installed.stage).as_posix()
        for package in PACKAGES
        for path in (installed.stage / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert "observability/grafana/grafana.env" in expected
    assert sorted(expected - in_wheel) == []
    assert COMPOSE_IN_WHEEL in in_wheel


def test_the_venv_imports_the_installed_packages_not_the_checkout(installed):
    where = "import launcher, observability; print(launcher.__file__); print(observability.__file__)"
    result = run_in_venv(installed, [installed.python, "-c", where])
    assert result.returncode == 0, result.stderr
    for module_file in result.stdout.split():
        assert Path(module_file).is_relative_to(installed.site_packages), module_file


def test_exporter_help_and_systemd_unit_run_from_the_installed_script(installed):
    help_text = run_in_venv(installed, [installed.script, "exporter", "--help"])
    assert help_text.returncode == 0, help_text.stderr
    assert help_text.stdout.startswith("usage: serve-with-monitoring exporter")

    unit = run_in_venv(installed, [installed.script, "systemd-unit"])
    assert unit.returncode == 0, unit.stderr
    assert "[Service]" in unit.stdout
    assert f"ExecStart={installed.venv / 'bin' / 'serve-with-monitoring'}" in unit.stdout


def test_docker_stack_hands_compose_the_installed_file_and_compose_finds_every_path(installed, tmp_path):
    state_dir = tmp_path / "state"
    docker_calls = tmp_path / "docker-standin"
    argv = ["--stack", "docker", "--state-dir", state_dir]
    for flag in ("--prometheus-port", "--grafana-port", "--alertmanager-port"):
        argv += [flag, free_port()]
    standin = {
        "SWM_STANDIN_DOCKER_STATE": str(docker_calls),
        "SWM_STANDIN_REPO": str(REPO_ROOT),
        "SWM_STANDIN_COMPOSE": str(Path(sys.executable).parent / "docker-compose"),
    }
    result = run_in_venv(installed, [installed.python, "-c", PLAN_DOCKER_STACK, *argv], standin)
    assert result.returncode == 0, result.stderr
    planned = json.loads(result.stdout.splitlines()[-1])

    compose = installed.venv / "share" / "serve-with-monitoring" / "docker-compose.yaml"
    assert planned["mode"] == "docker"
    project_args = planned["command"][4:]
    assert project_args[2:] == ["-f", str(compose)]
    calls = [json.loads(line)["argv"] for line in (docker_calls / "calls.jsonl").read_text().splitlines()]
    assert ["compose", *project_args, "down", "--timeout", "5"] in calls

    # The real Compose binary, as `docker compose` would load the file: each ${SWM_*:-../relative} default
    # must be overridden by the launcher, or a path would point beside the installed compose file.
    loaded = _run(
        [Path(sys.executable).parent / "docker-compose", *project_args, "config", "--format", "json"],
        cwd=installed.work,
        env=planned["environment"],
    )
    assert loaded.returncode == 0, loaded.stderr
    services = json.loads(loaded.stdout)["services"]
    assert services["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"  # from grafana.env
    for name, service in services.items():
        for volume in service.get("volumes", []):
            if volume["type"] != "bind":
                continue
            source = Path(volume["source"])
            assert source.is_relative_to(installed.venv) or source.is_relative_to(state_dir), (name, source)
            # What the wheel ships must be there; the state dir's are the launcher's, or compose creates them.
            assert source.exists() or not source.is_relative_to(installed.venv), (name, source)
