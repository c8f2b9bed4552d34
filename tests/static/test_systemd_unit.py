"""The systemd unit: in sync with its renderer, verified by systemd-analyze, exposure score bounded.

No systemd runs as PID 1 here, so the unit is checked offline. The notify/watchdog protocol itself is
tested end to end against the real launcher in tests/integration/test_systemd_notify.py.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.commands.systemd_syntax import exec_word
from launcher.commands.systemd_unit import render_unit
from launcher.settings.secret_options import SECRET_OPTIONS

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
        "TimeoutStartSec=4200",  # the default --startup-timeout, 3600, plus pre-flight
        "LimitNOFILE=65535",
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
    assert exec_word("plain") == "plain"
    assert exec_word("a b") == '"a b"'
    assert exec_word("100%") == "100%%"
    assert exec_word("$HOME") == "$$HOME"
    assert exec_word('{"k": 1}') == '"{\\"k\\": 1}"'
    assert exec_word(";") == '";"'  # only an unquoted lone `;` separates commands
    assert exec_word("") == '""'


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


# --- Values that would change the unit rather than sit in it (issue 26, items 10 and 11) -------------------


def unit_keys(unit: str) -> list[tuple[str, str]]:
    """(section, key) of every setting, in order, read the way systemd reads a unit: line by line, `#` and
    `;` lines are comments, a trailing backslash joins the next line."""
    keys = []
    section = ""
    text = re.sub(r"\\\n", " ", unit)
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("["):
            section = stripped
            continue
        keys.append((section, stripped.split("=", 1)[0].strip()))
    return keys


def exec_start_words(unit: str) -> list[str]:
    """ExecStart='s words as systemd.syntax(7) reads them: whitespace separates, a word may be wholly in
    double or single quotes, backslash escapes; then `%%` and `$$` become `%` and `$` (specifiers and
    variables are expanded after the split, so a doubled one is a literal). An unquoted lone `;` separates
    commands: it comes back as None."""
    (line,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    text = line.removeprefix("ExecStart=")
    blank = " \t"  # systemd's separators; Python's isspace() would also split at a no-break space
    words = []
    index = 0
    while index < len(text):
        if text[index] in blank:
            index += 1
            continue
        word = ""
        if text[index] in "\"'":
            quote = text[index]
            index += 1
            while text[index] != quote:
                if text[index] == "\\":
                    index += 1
                word += text[index]
                index += 1
            index += 1
            assert index == len(text) or text[index] in blank, "a quote must end its word"
        else:
            start = index
            while index < len(text) and text[index] not in blank:
                if text[index] == "\\":
                    index += 1
                word += text[index]
                index += 1
            if text[start:index] == ";":  # an unquoted lone semicolon ends the command: what follows is another
                words.append(None)
                continue
        words.append(word.replace("%%", "%").replace("$$", "$"))
    return words


def systemd_unit(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(LAUNCHER), "systemd-unit", *argv], capture_output=True, text=True, check=False, cwd=cwd)


def verify(unit: str, tmp_path: Path) -> None:
    path = tmp_path / "serve-with-monitoring.service"
    path.write_text(unit)
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr


INJECTED = "User=root"


def test_a_control_character_in_any_value_is_refused_in_one_line_and_nothing_is_printed(tmp_path):
    named = tmp_path / f"rules.yml\n{INJECTED}"  # a file that exists, so only its name can be refused
    named.write_text("groups: []\n")
    attempts = [
        ("--unit-user", f"swm\n{INJECTED}", "m"),
        (f"m\n{INJECTED}",),  # the model
        ("m", "--served-model-name", f"x\n{INJECTED}"),  # a vLLM option's value
        ("m", f"--served-model-name=x\r{INJECTED}"),
        ("m", "--chat-template", f"./t.jinja\n{INJECTED}"),  # a vLLM path
        ("m", "--extra-rules", str(named)),  # a launcher path
        ("m", "--exporter-web-config", f"/etc/web.yml\n{INJECTED}"),
        ("m", "--api-key-file", str(named)),  # it would become LoadCredential=
        ("m", "--state-dir", f"/srv/s\n{INJECTED}"),
        ("m", "--runbook-base-url", f"https://example.com/r\x1b{INJECTED}"),
        ("m", "--max-model-len", "2048\x7f"),
    ]
    for argv in attempts:
        result = systemd_unit(*argv, cwd=tmp_path)
        assert result.returncode == 2, (argv, result.stdout[-500:], result.stderr)
        assert result.stdout == "", argv
        assert len(result.stderr.strip().splitlines()) == 1, (argv, result.stderr)
        assert result.stderr.startswith("serve-with-monitoring: error:") and "Traceback" not in result.stderr


def test_a_nul_byte_and_bad_utf8_are_refused_by_the_serializer_itself():
    from launcher.commands.systemd_syntax import checked, exec_word
    from launcher.errors import UsageError

    for value in ("a\x00b", "a\udcffb", "a\u2028b\nc"):
        with pytest.raises(UsageError):
            exec_word(value)
    with pytest.raises(UsageError):
        checked("x", "\x00")


HOSTILE = [
    f"x {INJECTED}",
    f'" ; {INJECTED} "',
    "'single'",
    ";",
    "\\;",
    "a\\",
    "$HOME",
    "${SWM_ARGS}",
    "%n%d%%",
    'say "hi"',
    "tab\u00a0nbsp",
    "#not-a-comment",
    "ünïcode ✓",
    "",
]


def test_every_printable_value_stays_one_argument_and_adds_no_setting(tmp_path):
    baseline = systemd_unit("m", cwd=tmp_path)
    assert baseline.returncode == 0, baseline.stderr
    for value in HOSTILE:
        argv = ["m", "--served-model-name", value, f"--chat-template={value}", "--", value]
        result = systemd_unit(*argv, cwd=tmp_path)
        assert result.returncode == 0, (value, result.stderr)
        assert unit_keys(result.stdout) == unit_keys(baseline.stdout), value
        assert exec_start_words(result.stdout)[1:] == argv, value
        assert INJECTED not in [line.strip() for line in result.stdout.splitlines()]
    verify(result.stdout, tmp_path)


def test_a_hostile_user_name_is_refused_and_a_plain_one_is_written():
    for user in (f"swm {INJECTED}", "swm%n", "-root", "a" * 40, "swm\\"):
        result = systemd_unit("--unit-user", user, "m")
        assert result.returncode == 2 and result.stdout == "", user
        assert len(result.stderr.strip().splitlines()) == 1
    result = systemd_unit("--unit-user", "svc_vllm", "m")
    assert "User=svc_vllm\nGroup=svc_vllm\n" in result.stdout


def test_the_start_timeout_follows_startup_timeout(tmp_path):
    for startup in ("7200", "90000.5"):
        result = systemd_unit("m", "--startup-timeout", startup, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        timeout = int(re.search(r"^TimeoutStartSec=(\d+)$", result.stdout, re.MULTILINE).group(1))
        assert timeout > float(startup), "systemd would kill a start the launcher still waits for"
        assert timeout <= float(startup) + 3600, "pre-flight's margin, not a day"
    default = int(re.search(r"^TimeoutStartSec=(\d+)$", render_unit(), re.MULTILINE).group(1))
    assert default > 3600  # the launcher's default --startup-timeout


def test_the_unit_raises_the_file_limit_to_what_vllm_asks_for():
    """vLLM's set_ulimit() wants a soft limit of 65535 and warns at every start when it cannot have it."""
    result = systemd_unit("m")
    assert re.search(r"^LimitNOFILE=(\d+)$", result.stdout, re.MULTILINE)
    assert int(re.search(r"^LimitNOFILE=(\d+)$", result.stdout, re.MULTILINE).group(1)) >= 65535
    assert "LimitNOFILE=65535" in render_unit()


def test_relative_paths_become_absolute_since_the_unit_runs_in_root(tmp_path):
    (tmp_path / "conf").mkdir()
    for name in ("rules.yml", "more.yml", "am.yml", "web.yml", "pweb.yml", "key", "swm.yaml", "t.jinja"):
        (tmp_path / "conf" / name).write_text("k: v\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "bin").mkdir()
    argv = [
        "model",
        "--extra-rules",
        "conf/rules.yml",
        "--extra-rules=./conf/more.yml",
        "--alertmanager-config",
        "conf/am.yml",
        "--exporter-web-config",
        "conf/web.yml",
        "--prometheus-web-config=conf/pweb.yml",
        "--config",
        "conf/swm.yaml",
        "--vllm-bin",
        "bin/vllm",
        "--chat-template",
        "./conf/t.jinja",
        "--api-key-file",
        "conf/key",
    ]
    result = systemd_unit(*argv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    words = exec_start_words(result.stdout)
    here = str(tmp_path)
    assert words[1:] == [
        f"{here}/model",
        "--extra-rules",
        f"{here}/conf/rules.yml",
        f"--extra-rules={here}/conf/more.yml",
        "--alertmanager-config",
        f"{here}/conf/am.yml",
        "--exporter-web-config",
        f"{here}/conf/web.yml",
        f"--prometheus-web-config={here}/conf/pweb.yml",
        "--config",
        f"{here}/conf/swm.yaml",
        "--vllm-bin",
        f"{here}/bin/vllm",
        "--chat-template",
        f"{here}/conf/t.jinja",
        "--api-key-file",
        "%d/vllm-api-key",
    ]
    assert f"LoadCredential=vllm-api-key:{here}/conf/key\n" in result.stdout
    assert "--served-model-name" not in result.stdout
    bare = systemd_unit("m", "--vllm-bin", "vllm", cwd=tmp_path)  # a name looked up on PATH stays a name
    assert exec_start_words(bare.stdout)[1:] == ["m", "--vllm-bin", "vllm"]


def test_a_relative_path_inside_the_config_file_is_refused(tmp_path):
    (tmp_path / "swm.yaml").write_text("extra-rules: [rules.yml]\n")
    result = systemd_unit("m", "--config", "swm.yaml", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert "rules.yml" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("option", SECRET_OPTIONS, ids=lambda option: option.flag)
def test_no_secret_option_puts_its_value_in_the_unit_each_becomes_a_credential(option, tmp_path):
    for argv in (("m", option.flag, "SECRET-VALUE-123"), ("m", f"{option.flag}=SECRET-VALUE-123")):
        result = systemd_unit(*argv, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "SECRET-VALUE-123" not in result.stdout + result.stderr
        name = option.variable.lower().replace("_", "-")
        assert f"LoadCredential={name}:/etc/serve-with-monitoring/{name}\n" in result.stdout
        assert exec_start_words(result.stdout)[1:] == ["m", option.file_option, f"%d/{name}"]
        assert f"/etc/serve-with-monitoring/{name}" in result.stderr  # where to store it
        verify(result.stdout, tmp_path)
    secret = tmp_path / "secret"
    secret.write_text("SECRET-VALUE-123\n")
    result = systemd_unit("m", option.file_option, "secret", cwd=tmp_path)
    assert f"LoadCredential={name}:{secret}\n" in result.stdout


def test_a_bare_hf_token_stays_it_holds_no_secret(tmp_path):
    """Alone, --hf-token means "the token huggingface_hub already has" (HF_TOKEN, or a stored login)."""
    result = systemd_unit("m", "--hf-token", "--max-model-len", "2048", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert exec_start_words(result.stdout)[1:] == ["m", "--hf-token", "--max-model-len", "2048"]
    assert "LoadCredential" not in result.stdout


def test_values_written_as_the_rest_of_a_line_cannot_join_the_next_or_change():
    """LoadCredential='s path is not unquoted: a trailing backslash would join the next line to it, and
    systemd strips trailing blanks, so both are refused; `%` is doubled like everywhere else."""
    from launcher.commands.systemd_syntax import credential, environment, seconds
    from launcher.errors import UsageError

    for path in ("/etc/key\\", "/etc/key ", "relative/key", "/etc/k\ney"):
        with pytest.raises(UsageError):
            credential("vllm-api-key", path)
    assert credential("vllm-api-key", "/etc/100%/key") == "vllm-api-key:/etc/100%%/key"
    assert environment("X", 'a "b" %n') == '"X=a \\"b\\" %%n"'
    for bad in (float("inf"), float("nan"), -1.0):
        with pytest.raises(UsageError):
            seconds(bad)
    assert seconds(7200.2) == "7201"
