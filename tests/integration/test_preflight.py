"""Each pre-flight failure: one line, no traceback, the right exit code, and nothing started."""

import os
import socket
import stat
import subprocess

import pytest

from launcher.errors import EXIT_ENVIRONMENT, EXIT_USAGE
from tests.support.launcher_process import LauncherProcess

pytestmark = pytest.mark.vllm


def run(tmp_path, cache_home, args, port=None):
    launcher = LauncherProcess(args, tmp_path, cache_home, port=port)
    code = launcher.run_to_exit(timeout=120)
    output = launcher.output()
    errors = [line for line in output.splitlines() if line.startswith("serve-with-monitoring: error:")]
    return code, errors, output, launcher


def assert_one_line_and_nothing_started(errors, output, launcher):
    assert len(errors) == 1, output
    assert "Traceback" not in output
    assert not (launcher.state_dir / "logs" / "vllm.log").exists()


def test_port_in_use(tmp_path, cache_home):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, errors, output, launcher = run(tmp_path, cache_home, [], port=port)
    assert code == EXIT_ENVIRONMENT
    assert errors[0] == f"serve-with-monitoring: error: vLLM (--port): port {port} on 127.0.0.1 is already in use"
    assert_one_line_and_nothing_started(errors, output, launcher)


def test_no_vllm_executable(tmp_path, cache_home):
    code, errors, output, launcher = run(tmp_path, cache_home, ["m", "--vllm-bin", str(tmp_path / "nope")])
    assert code == EXIT_ENVIRONMENT
    assert "no such executable" in errors[0] and "pip install" in errors[0]
    assert_one_line_and_nothing_started(errors, output, launcher)


def test_missing_local_model_path(tmp_path, cache_home):
    code, errors, output, launcher = run(tmp_path, cache_home, [str(tmp_path / "models" / "llama")])
    assert code == EXIT_ENVIRONMENT
    assert "does not exist" in errors[0]
    assert_one_line_and_nothing_started(errors, output, launcher)


def test_unreadable_config_file(tmp_path, cache_home):
    config = tmp_path / "config.yaml"
    config.write_text("grace-period: 3\n")
    config.chmod(0)
    if config.stat().st_mode & stat.S_IRUSR or _root_reads_anything(config):
        config.write_bytes(b"\xff\xfe not utf-8")
        config.chmod(0o644)
    code, errors, output, launcher = run(tmp_path, cache_home, ["--config", str(config)])
    assert code == EXIT_USAGE
    assert str(config) in errors[0]
    assert_one_line_and_nothing_started(errors, output, launcher)


def _root_reads_anything(path):
    try:
        path.read_bytes()
        return True
    except PermissionError:
        return False


def test_invalid_config_names_the_key(tmp_path, cache_home):
    config = tmp_path / "config.yaml"
    config.write_text("max-restarts: lots\n")
    code, errors, output, launcher = run(tmp_path, cache_home, ["--config", str(config)])
    assert code == EXIT_USAGE
    assert "key 'max-restarts'" in errors[0]
    assert_one_line_and_nothing_started(errors, output, launcher)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--grace-period", "-3"], "--grace-period"),
        (["--port", "99999"], "--port: expected a TCP port"),
        (["--disable-log-stats"], "removes every vllm: metric"),
        (["--uds", "/tmp/x.sock"], "--uds is not supported"),
    ],
)
def test_invalid_values(tmp_path, cache_home, args, fragment):
    code, errors, output, launcher = run(tmp_path, cache_home, args)
    assert code == EXIT_USAGE
    assert fragment in errors[0]
    assert_one_line_and_nothing_started(errors, output, launcher)


def test_a_bad_alertmanager_config_is_named_by_amtool_and_nothing_starts(tmp_path, cache_home):
    config = tmp_path / "alertmanager.yml"
    config.write_text("route:\n  receiver: pager\nreceivers:\n  - name: email\n")
    code, errors, output, launcher = run(
        tmp_path, cache_home, ["--stack", "native", "--alertmanager-config", str(config)]
    )
    assert code == EXIT_USAGE
    assert errors == [
        f'serve-with-monitoring: error: --alertmanager-config {config}: undefined receiver "pager" used in route'
    ]
    assert_one_line_and_nothing_started(errors, output, launcher)
    assert not (launcher.state_dir / "logs" / "prometheus.log").exists()
    assert not (launcher.state_dir / "logs" / "alertmanager.log").exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--slo-itl-threshold", "0.25"], "not a bucket bound of vllm:inter_token_latency_seconds"),
        (["--slo-ttft-target", "99"], "--slo-ttft-target: expected a fraction between 0 and 1"),
        (["--alert-webhook", "hooks.example/T0KEN"], "--alert-webhook: expected an http:// or https:// URL"),
        (["--stack", "none", "--heartbeat-url", "https://hc.example/ping/x"], "--heartbeat-url needs Prometheus"),
    ],
)
def test_invalid_alerting_values(tmp_path, cache_home, args, fragment):
    code, errors, output, launcher = run(tmp_path, cache_home, args)
    assert code == EXIT_USAGE
    assert fragment in errors[0], errors
    assert "T0KEN" not in output  # a webhook URL may carry a token: never echoed
    assert_one_line_and_nothing_started(errors, output, launcher)


@pytest.mark.parametrize(
    ("flag", "fragment"),
    [
        (["--bogus-flag"], "has no option --bogus-flag; see `vllm serve --help=all`"),
        (["--max-modle-len", "512"], "has no option --max-modle-len (did you mean --max-model-len"),
        (["--stall-timeot", "9"], "(did you mean --stall-timeout"),
    ],
)
def test_an_option_the_installed_vllm_lacks_is_refused_before_anything_starts(tmp_path, cache_home, flag, fragment):
    code, errors, output, launcher = run(tmp_path, cache_home, ["--stack", "native", *flag])
    assert code == EXIT_USAGE
    assert fragment in errors[0], errors
    assert_one_line_and_nothing_started(errors, output, launcher)
    assert not (launcher.state_dir / "logs").exists() or not any((launcher.state_dir / "logs").iterdir())


def test_a_state_dir_that_cannot_be_written_is_one_line(tmp_path, cache_home):
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(read_only)], check=False
        ).returncode
        == 0
    )
    if not mounted:
        read_only.chmod(0o555)  # enough for anyone but root
    try:
        launcher = LauncherProcess([], tmp_path, cache_home)
        launcher.args[launcher.args.index("--state-dir") + 1] = str(read_only / "state")
        code = launcher.run_to_exit(timeout=60)
        output = launcher.output()
        errors = [line for line in output.splitlines() if line.startswith("serve-with-monitoring: error:")]
        assert code == EXIT_ENVIRONMENT
        assert errors == [
            f"serve-with-monitoring: error: cannot create state dir {read_only / 'state'}: "
            f"{'Read-only file system' if mounted else 'Permission denied'}"
        ]
        assert "Traceback" not in output
    finally:
        if mounted:
            subprocess.run(["umount", str(read_only)], check=False)
