"""The systemd unit: in sync with its renderer, verified by systemd-analyze, exposure score bounded.

No systemd runs as PID 1 here, so the unit is checked offline. The notify/watchdog protocol itself is
tested end to end against the real launcher in tests/integration/test_systemd_notify.py.
"""

import re
import subprocess
import sys
from pathlib import Path

from launcher.commands.systemd_unit import render_unit, systemd_quote

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "systemd" / "serve-with-monitoring.service"
LAUNCHER = Path(sys.executable).parent / "serve-with-monitoring"
# 1.8 today ("OK"). The GPU needs device access, torch's JIT needs W+X memory and serving needs the
# network, so a few points stay open; 2.5 leaves room for systemd's scoring to move, not for regressions.
MAX_EXPOSURE = 2.5


def rendered_for_this_machine(tmp_path: Path) -> Path:
    result = subprocess.run(
        [
            str(LAUNCHER),
            "systemd-unit",
            "mistralai/Mistral-7B-v0.1",
            "--max-model-len",
            "2048",
            "--disable-log-requests",
            "--grace-period",
            "20",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    path = tmp_path / "serve-with-monitoring.service"
    path.write_text(result.stdout)
    return path


def test_committed_unit_is_the_rendered_default():
    assert UNIT.read_text() == render_unit()


def test_systemd_analyze_verify_has_nothing_to_say(tmp_path):
    result = subprocess.run(
        ["systemd-analyze", "verify", str(rendered_for_this_machine(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # unknown keys and bad values only warn


def test_exposure_score_stays_low(tmp_path):
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(rendered_for_this_machine(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    score = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout).group(1))
    assert score <= MAX_EXPOSURE, result.stdout[-2000:]


def test_the_unit_has_what_production_needs(tmp_path):
    unit = rendered_for_this_machine(tmp_path).read_text()
    for line in (
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=300",
        "Restart=on-failure",
        "KillMode=mixed",
        "RestartPreventExitStatus=2 3 4",  # usage, pre-flight, and a person must act (a lost GPU)
        "TimeoutStartSec=3600",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "DeviceAllow=char-nvidia-frontend rw",
        "EnvironmentFile=-/etc/serve-with-monitoring/",
    ):
        assert line in unit, line
    assert "User=swm" in unit and "User=root" not in unit
    stop = int(re.search(r"TimeoutStopSec=(\d+)", unit).group(1))
    assert stop > 20 + 2  # longer than --grace-period 20 plus the launcher's 2 s
    assert f"ExecStart={LAUNCHER} mistralai/Mistral-7B-v0.1 --max-model-len 2048" in unit


def test_arguments_are_quoted_for_systemd():
    assert systemd_quote("plain") == "plain"
    assert systemd_quote("a b") == '"a b"'
    assert systemd_quote("100%") == "100%%"
    assert systemd_quote("$HOME") == "$$HOME"
    assert systemd_quote('{"k": 1}') == '"{\\"k\\": 1}"'


def test_systemd_unit_subcommand_rejects_a_bad_value():
    result = subprocess.run(
        [str(LAUNCHER), "systemd-unit", "m", "--grace-period", "soon"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("serve-with-monitoring: error:")
    assert "Traceback" not in result.stderr


def test_an_api_key_never_reaches_the_unit_it_becomes_a_credential(tmp_path):
    result = subprocess.run(
        [str(LAUNCHER), "systemd-unit", "m", "--api-key", "SECRET-KEY-1234"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "SECRET-KEY-1234" not in result.stdout + result.stderr
    assert "LoadCredential=vllm-api-key:/etc/serve-with-monitoring/vllm-api-key" in result.stdout
    assert "--api-key-file %d/vllm-api-key" in result.stdout
    assert "/etc/serve-with-monitoring/vllm-api-key" in result.stderr  # where to put it
    unit = tmp_path / "serve-with-monitoring.service"
    unit.write_text(result.stdout)
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, cwd=tmp_path)
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr


def test_an_api_key_file_is_loaded_as_a_credential(tmp_path):
    key = tmp_path / "key"
    key.write_text("k\n")
    result = subprocess.run(
        [str(LAUNCHER), "systemd-unit", "m", "--api-key-file", str(key)], capture_output=True, text=True, check=True
    )
    assert f"LoadCredential=vllm-api-key:{key}" in result.stdout
    assert "--api-key-file %d/vllm-api-key" in result.stdout
