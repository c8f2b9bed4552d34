from pathlib import Path

import pytest

from launcher.errors import UsageError
from launcher.settings.command_line import parse_command_line
from launcher.settings.settings import merge_settings
from launcher.state_layout import StateLayout
from launcher.vllm_server.command import ipc_dir_for, plan_vllm
from launcher.vllm_server.target import read_target


def plan(tmp_path, caps, argv, env=None, config=None):
    settings = merge_settings(parse_command_line([*argv, "--state-dir", str(tmp_path / "state")]))
    if config:
        settings = type(settings)(**{**settings.__dict__, "vllm_config": config})
    layout = StateLayout(settings.state_dir)
    return plan_vllm(settings, tmp_path / "vllm", caps, layout, tmp_path / "tiny", base_env=env or {"HOME": "/h"})


def test_probe_target_follows_vllm_options(caps_0_32):
    target = read_target(("--port", "8123", "m", "--served-model-name", "a", "b", "--api-key", "k"), None, caps_0_32)
    assert (target.model, target.port, target.served_model_name, target.api_key) == ("m", 8123, "a", "k")
    assert target.base_url == "http://127.0.0.1:8123"
    assert target.model_name == "a"


def test_wildcard_host_is_probed_on_loopback(caps_0_32):
    target = read_target(("m", "--host", "0.0.0.0", "--ssl-certfile", "c.pem"), None, caps_0_32)
    assert target.base_url == "https://127.0.0.1:8000"


def test_config_file_values_are_read_but_the_command_line_wins(caps_0_32):
    target = read_target(("m", "--port", "9001"), {"port": 9000, "served_model_name": ["x"]}, caps_0_32)
    assert (target.port, target.served_model_name) == (9001, "x")


def test_invalid_port_is_a_usage_error(caps_0_32):
    with pytest.raises(UsageError, match="--port: expected a TCP port"):
        read_target(("m", "--port", "http"), None, caps_0_32)


def test_binds_loopback_unless_the_user_chooses(tmp_path, caps_0_32):
    argv = plan(tmp_path, caps_0_32, ["m"]).argv
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    exposed = plan(tmp_path, caps_0_32, ["m", "--host", "0.0.0.0"]).argv
    assert exposed.count("--host") == 1
    assert exposed[exposed.index("--host") + 1] == "0.0.0.0"


def test_no_model_serves_the_tiny_default_with_cpu_friendly_flags(tmp_path, caps_0_32):
    invocation = plan(tmp_path, caps_0_32, ["--max-model-len", "2048"])
    argv = invocation.argv
    assert invocation.uses_tiny_model
    assert argv[1:3] == ("serve", str(tmp_path / "tiny"))
    assert argv.count("--max-model-len") == 1 and argv[argv.index("--max-model-len") + 1] == "2048"
    assert "--enforce-eager" in argv and "--kv-cache-memory-bytes" in argv
    assert argv[argv.index("--served-model-name") + 1] == "tiny-llama"
    assert invocation.env["HF_HUB_OFFLINE"] == "1"


def test_child_environment_keeps_everything_in_the_state_dir_and_stays_quiet(tmp_path, caps_0_32):
    invocation = plan(tmp_path, caps_0_32, ["m"])
    state = str(tmp_path / "state")
    for key in ("TMPDIR", "VLLM_CACHE_ROOT", "TORCHINDUCTOR_CACHE_DIR"):
        assert invocation.env[key].startswith(state), key
    assert invocation.env["VLLM_NO_USAGE_STATS"] == "1"
    assert invocation.env["DO_NOT_TRACK"] == "1"
    assert "PROMETHEUS_MULTIPROC_DIR" not in invocation.env
    assert invocation.argv[invocation.argv.index("--disable-access-log-for-endpoints") + 1] == "/health,/metrics"


def test_usage_stats_only_when_the_user_opts_in(tmp_path, caps_0_32):
    env = plan(tmp_path, caps_0_32, ["m", "--allow-usage-stats"]).env
    assert "VLLM_NO_USAGE_STATS" not in env and "DO_NOT_TRACK" not in env


def test_several_api_servers_get_a_private_multiproc_dir(tmp_path, caps_0_32):
    invocation = plan(tmp_path, caps_0_32, ["m", "-asc", "2"], env={"PROMETHEUS_MULTIPROC_DIR": "/nfs/stale"})
    assert invocation.multiproc_dir is not None
    assert invocation.env["PROMETHEUS_MULTIPROC_DIR"] == str(invocation.multiproc_dir)
    assert str(invocation.multiproc_dir).startswith(str(tmp_path / "state"))
    single = plan(tmp_path, caps_0_32, ["m"], env={"PROMETHEUS_MULTIPROC_DIR": "/nfs/stale"})
    assert "PROMETHEUS_MULTIPROC_DIR" not in single.env


@pytest.mark.parametrize(
    ("argv", "config", "api_servers"),
    [
        (["m", "-dp", "2"], None, 2),  # vLLM runs one API server per rank behind its own load balancer
        (["m", "--data-parallel-size", "3"], None, 3),
        (["m"], {"data-parallel-size": 2}, 2),
        (["m", "-dp", "2", "--api-server-count", "1"], None, 1),
        (["m", "-dp", "2", "--data-parallel-external-lb"], None, 1),
        (["m", "-dp", "4", "--data-parallel-rank", "1"], None, 1),
        (["m", "-dp", "4", "-dpl", "2", "--data-parallel-hybrid-lb"], None, 2),
        (["m", "-tp", "2"], None, 1),
    ],
)
def test_the_api_servers_vllm_will_run_are_counted_as_vllm_counts_them(tmp_path, caps_0_32, argv, config, api_servers):
    invocation = plan(tmp_path, caps_0_32, argv, config=config)
    assert invocation.target.api_server_count == api_servers
    assert (invocation.multiproc_dir is not None) == (api_servers > 1)


def test_vllm_keys_of_the_config_file_reach_vllm_as_a_file(tmp_path, caps_0_32):
    invocation = plan(tmp_path, caps_0_32, ["m"], config={"max-model-len": 2048, "disable-log-requests": True})
    path = invocation.argv[invocation.argv.index("--config") + 1]
    text = open(path).read()
    assert "max-model-len: 2048" in text and "enable-log-requests: false" in text


def test_ipc_sockets_stay_in_the_state_dir_unless_its_path_is_too_long_for_a_socket(tmp_path):
    short = Path("/srv/swm/run/vllm")
    assert ipc_dir_for(short) == short / "tmp"
    deep = tmp_path / ("x" * 80) / "run" / "vllm"
    fallback = ipc_dir_for(deep)
    assert len(str(fallback)) + len("/12345678-1234-1234-1234-123456789012") < 108
    assert fallback == ipc_dir_for(deep)  # stable, so the next start wipes what a killed run left


def test_the_ipc_dir_stays_short_even_under_a_long_tmpdir(tmp_path, monkeypatch):
    from launcher.vllm_server.command import ipc_dir_for

    long_tmp = tmp_path / ("t" * 80)
    long_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(long_tmp))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    fallback = ipc_dir_for(tmp_path / ("s" * 100))
    assert str(fallback).startswith("/tmp/swm-")
    assert len(str(fallback)) + len("/12345678-1234-1234-1234-123456789012") < 108


@pytest.mark.parametrize(
    "argv",
    [
        ["m", "--port", "8001", "--enforce-eager"],
        ["--port", "8001", "m", "--enforce-eager"],
        ["--port", "8001", "--enforce-eager", "m"],
        ["--port", "8001", "--grace-period", "5", "m", "--enforce-eager"],
        ["--port=8001", "--max_model_len", "2048", "m", "--enforce-eager"],
    ],
)
def test_the_model_reaches_vllm_first_wherever_it_was_given(tmp_path, caps_0_32, argv):
    """vLLM refuses a model after an option ("`model` should be provided as the first positional argument")."""
    argv_of_vllm = plan(tmp_path, caps_0_32, argv).argv
    assert argv_of_vllm[1:3] == ("serve", "m")
    options = [token for token in argv_of_vllm[3:] if token not in ("--max_model_len", "2048")]
    assert options[:3] in (["--port", "8001", "--enforce-eager"], ["--port=8001", "--enforce-eager", "--host"])


def test_a_short_option_with_its_value_attached_does_not_swallow_the_model(tmp_path, caps_0_32):
    assert plan(tmp_path, caps_0_32, ["-O3", "m"]).argv[1:4] == ("serve", "m", "-O3")
    assert plan(tmp_path, caps_0_32, ["-asc", "1", "m"]).argv[1:5] == ("serve", "m", "-asc", "1")
