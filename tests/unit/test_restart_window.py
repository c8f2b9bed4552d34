"""--restart-window, from the command line or --config, reaches the restart policy the launcher gives each
supervised child, and that policy counts only the failures inside the window."""

from __future__ import annotations

from launcher import defaults
from launcher.commands.serve import restart_policy
from launcher.settings.command_line import parse_command_line
from launcher.settings.settings import load_settings


def _policy(tmp_path, *args: str):
    return restart_policy(load_settings(parse_command_line(["m", "--state-dir", str(tmp_path / "state"), *args])))


def test_the_command_line_window_reaches_the_policy(tmp_path):
    assert _policy(tmp_path, "--restart-window", "42").window_s == 42
    assert _policy(tmp_path).window_s == defaults.RESTART_WINDOW_S != 42


def test_the_config_file_window_reaches_the_policy(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("restart-window: 42\nmax-restarts: 2\n")
    policy = _policy(tmp_path, "--config", str(config))
    assert (policy.window_s, policy.max_restarts) == (42, 2)
    assert _policy(tmp_path, "--config", str(config), "--restart-window", "7").window_s == 7  # command line wins


def test_failures_spread_wider_than_the_window_never_add_up_to_giving_up(tmp_path):
    policy = _policy(tmp_path, "--max-restarts", "2", "--restart-window", "10")
    for failed_at in (0, 11, 22, 33, 44):  # one failure per window, five in all
        assert policy.may_restart(failed_at), failed_at
        policy.record_restart(failed_at)
    policy.record_restart(50)  # a second failure within 10 s of the one at 44
    assert not policy.may_restart(51)
