"""Files under the state dir are written without following a symlink, and a state dir that is not the
effective user's is refused. Each test plants a link where the launcher writes, pointing at a stand-in
for a root-owned 0600 file (a file of ours, since the tests do not run as root), and checks that the
stand-in keeps its bytes and its mode.

Ownership cannot be tested for real without a second user: the tests that need it monkeypatch os.geteuid,
which is what the check compares the directory's owner with."""

import json
import os
import signal
import stat
import sys
import time
from pathlib import Path

import pytest

from launcher.commands.main import main
from launcher.errors import EXIT_ENVIRONMENT, PreflightError
from launcher.file_writes import UnsafePathError, write_atomically, write_for_container, write_private
from launcher.preflight import check_state_dir
from launcher.settings.command_line import parse_command_line
from launcher.settings.settings import merge_settings
from launcher.state_layout import StateLayout
from launcher.states import SupervisorStatus
from launcher.supervision.child_process import ChildProcess
from launcher.supervision.status_file import write_status

VICTIM_TEXT = b"root:secret\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """Stands in for a root-owned 0600 file outside the state dir."""
    path = tmp_path / "elsewhere" / "shadow"
    path.parent.mkdir()
    path.write_bytes(VICTIM_TEXT)
    path.chmod(0o600)
    return path


@pytest.fixture
def state(tmp_path: Path) -> Path:
    root = tmp_path / "state"
    root.mkdir(mode=0o700)
    StateLayout(root).ensure()
    return root


def plant(link: Path, target: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return link


def assert_untouched(victim: Path) -> None:
    assert victim.read_bytes() == VICTIM_TEXT
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600


def settings_in(state: Path, *extra: str):
    return merge_settings(parse_command_line(["--state-dir", str(state), *extra]))


# -- the writes themselves ---------------------------------------------------------------------------


def test_a_link_planted_at_the_temporary_name_is_not_followed(state, victim):
    path = state / "generated" / "vllm-config.yaml"
    plant(path.with_name(f".{path.name}.{os.getpid()}.tmp"), victim)  # the name the writer used to pick
    write_private(path, "model: x\n")
    assert_untouched(victim)
    assert path.read_text() == "model: x\n" and not path.is_symlink()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_status_file_temporary_is_not_followed(state, victim):
    path = StateLayout(state).supervisor_state
    plant(path.with_name(f".{path.name}.{os.getpid()}.tmp"), victim)
    write_status(path, SupervisorStatus(launcher_pid=1, updated_at=0.0))
    assert_untouched(victim)
    assert json.loads(path.read_text())["launcher_pid"] == 1


def test_a_link_at_the_final_name_is_replaced_not_written_through(state, victim):
    path = plant(state / "generated" / "alertmanager" / "alertmanager.yml", victim)
    write_private(path, "route: {}\n")
    assert_untouched(victim)
    assert not path.is_symlink() and path.read_text() == "route: {}\n"


def test_the_native_prometheus_config_is_not_written_through_a_link(state, victim):
    from launcher.stack.prometheus_child import write_native_config

    settings = settings_in(state)
    layout = StateLayout(settings.state_dir)
    path = plant(layout.generated / "prometheus" / "prometheus.yml", victim)
    write_native_config(settings, layout)
    assert_untouched(victim)
    assert not path.is_symlink() and "scrape_configs" in path.read_text()


def test_a_child_log_is_never_appended_through_a_link(state, victim, guard):
    log_path = plant(StateLayout(state).log_file("vllm"), victim)
    child = ChildProcess("vllm", [sys.executable, "-c", "print('hello')"], dict(os.environ), log_path, guard)
    with pytest.raises(UnsafePathError) as refused:
        child.start()
    assert "\n" not in str(refused.value) and "symlink" in str(refused.value)
    assert_untouched(victim)


def test_a_child_log_is_private_and_appended_to(state, guard):
    log_path = StateLayout(state).log_file("exporter")
    child = ChildProcess("exporter", [sys.executable, "-c", "print('hello')"], dict(os.environ), log_path, guard)
    child.start()
    while child.poll() is None:
        time.sleep(0.01)
    child.reap()
    assert "hello" in log_path.read_text()
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600


@pytest.mark.parametrize("subdirectory", ["generated", "logs", "generated/prometheus"])
def test_a_symlinked_directory_under_the_state_dir_is_refused(state, tmp_path, subdirectory):
    elsewhere = tmp_path / "elsewhere-dir"
    elsewhere.mkdir(mode=0o700)
    link = state / subdirectory
    if link.exists():
        link.rmdir()
    plant(link, elsewhere)
    with pytest.raises(UnsafePathError) as refused:
        write_for_container(link / "rules" / "alerts.yml", "groups: []\n")
    message = str(refused.value)
    assert "\n" not in message and str(link) in message
    assert list(elsewhere.iterdir()) == []
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o700  # write_for_container's chmod 0755 did not land there


def test_the_layout_refuses_a_symlinked_subdirectory(state, tmp_path):
    elsewhere = tmp_path / "elsewhere-logs"
    elsewhere.mkdir()
    (state / "logs").rmdir()
    plant(state / "logs", elsewhere)
    with pytest.raises(UnsafePathError):
        StateLayout(state).ensure()


def test_the_rules_directory_is_not_replaced_through_a_link(state, tmp_path):
    from launcher.stack.prometheus_rules import rules_dir, write_rules

    settings = settings_in(state)
    layout = StateLayout(settings.state_dir)
    elsewhere = tmp_path / "elsewhere-rules"
    elsewhere.mkdir()
    plant(rules_dir(layout), elsewhere)
    with pytest.raises(UnsafePathError):
        write_rules(settings, layout)
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("which", ["grafana", "exporter"])
def test_a_password_file_is_neither_read_nor_chmodded_through_a_link(state, victim, which):
    from launcher.stack.grafana_credentials import ensure_admin_password
    from launcher.stack.secured_endpoint import launcher_password

    victim.chmod(0o640)
    if which == "grafana":
        plant(state / "grafana-admin-password", victim)
        with pytest.raises(UnsafePathError):
            ensure_admin_password(state)
    else:
        link = plant(state / "generated" / "exporter" / "launcher-password", victim)
        with pytest.raises(UnsafePathError):
            launcher_password(link)
    assert victim.read_bytes() == VICTIM_TEXT
    assert stat.S_IMODE(victim.stat().st_mode) == 0o640


def test_a_password_file_of_ours_is_read_back_and_kept_0600(state):
    from launcher.stack.grafana_credentials import ensure_admin_password

    first = ensure_admin_password(state)
    first.path.chmod(0o644)
    again = ensure_admin_password(state)
    assert (again.password, again.new) == (first.password, False)
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600


def test_the_capability_cache_temporary_is_not_followed(tmp_path, victim):
    from launcher.vllm_server.capabilities import _fingerprint, learn_capabilities

    executable = tmp_path / "vllm"
    executable.write_text("#!/bin/sh\nprintf '  --port PORT  the port\\n  --host HOST  the host\\n'\n")
    executable.chmod(0o755)
    cache = tmp_path / "cache"
    cache_file = cache / f"vllm-capabilities-{_fingerprint(executable)}.json"
    plant(cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp"), victim)
    capabilities = learn_capabilities(executable, cache, {"PATH": os.environ["PATH"]})
    assert capabilities.accepts("--port")
    assert_untouched(victim)
    assert json.loads(cache_file.read_text())["arity"]["--port"] == "1"


def test_the_termination_message_is_not_written_through_a_link(tmp_path, victim, monkeypatch):
    from launcher.commands.serve import _leave_termination_message

    link = plant(tmp_path / "termination-log", victim)
    monkeypatch.setenv("SWM_TERMINATION_LOG", str(link))
    _leave_termination_message("reset the GPU")
    assert_untouched(victim)
    regular = tmp_path / "real-termination-log"
    regular.write_text("")
    monkeypatch.setenv("SWM_TERMINATION_LOG", str(regular))
    _leave_termination_message("reset the GPU")
    assert regular.read_text() == "reset the GPU\n"


# -- the state dir's owner -----------------------------------------------------------------------------


def test_a_state_dir_of_another_user_is_refused_in_one_line(tmp_path, monkeypatch):
    """Simulated: os.geteuid says another user; the directory belongs to the test's user."""
    state = tmp_path / "theirs"
    state.mkdir(mode=0o755)
    monkeypatch.setattr(os, "geteuid", lambda: state.stat().st_uid + 1)
    with pytest.raises(PreflightError) as refused:
        check_state_dir(state)
    assert refused.value.exit_code == EXIT_ENVIRONMENT == 3
    assert "\n" not in str(refused.value) and str(state) in str(refused.value)
    assert stat.S_IMODE(state.stat().st_mode) == 0o755  # not chmodded on the way to the refusal


def test_the_launcher_exits_3_on_a_state_dir_of_another_user(tmp_path, monkeypatch, capsys):
    state = tmp_path / "theirs"
    state.mkdir(mode=0o700)
    monkeypatch.setattr(os, "geteuid", lambda: state.stat().st_uid + 1)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        code = main(["--state-dir", str(state), "--vllm-bin", str(tmp_path / "no-vllm"), "facebook/opt-125m"])
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    error = capsys.readouterr().err
    assert code == 3
    assert error.count("\n") == 1 and "not owned by" in error
    assert list(state.iterdir()) == []  # nothing written into it


def test_the_launcher_exits_3_in_one_line_on_a_link_planted_under_the_state_dir(state, tmp_path, capsys):
    """docs/faults.md: a planted link is refused in one line, exit 3, before anything starts, and nothing
    is written through it."""
    elsewhere = tmp_path / "elsewhere-logs"
    elsewhere.mkdir(mode=0o700)
    (state / "logs").rmdir()
    plant(state / "logs", elsewhere)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        code = main(["--state-dir", str(state), "--vllm-bin", str(tmp_path / "no-vllm"), "facebook/opt-125m"])
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    error = capsys.readouterr().err
    assert code == EXIT_ENVIRONMENT == 3
    assert error.count("\n") == 1, error
    assert f"{state / 'logs'} is a symlink: refused (the launcher never writes or reads through a link)" in error
    assert "no such executable" not in error  # refused before vLLM is even looked for
    assert list(elsewhere.iterdir()) == []


def test_a_symlinked_state_dir_is_resolved_once_and_its_real_directory_checked(tmp_path, monkeypatch):
    real = tmp_path / "data" / "swm"
    real.mkdir(parents=True, mode=0o700)
    link = tmp_path / "var-lib-swm"
    link.symlink_to(real)
    settings = settings_in(link)
    assert settings.state_dir == real  # everything below it is written without following any link
    check_state_dir(settings.state_dir)
    monkeypatch.setattr(os, "geteuid", lambda: real.stat().st_uid + 1)
    with pytest.raises(PreflightError, match="not owned by"):
        check_state_dir(settings.state_dir)


def test_a_state_dir_swapped_for_a_link_after_it_was_resolved_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    swapped = tmp_path / "swapped"
    swapped.symlink_to(real)
    with pytest.raises(PreflightError, match="symlink"):
        check_state_dir(swapped)


def test_writes_work_in_a_fresh_state_dir(tmp_path):
    state = tmp_path / "fresh" / "state"
    check_state_dir(state)
    layout = StateLayout(state)
    layout.ensure()
    write_atomically(layout.generated / "a" / "b" / "c.yml", "x: 1\n")
    assert (layout.generated / "a" / "b" / "c.yml").read_text() == "x: 1\n"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_the_rules_directory_is_not_emptied_through_a_linked_parent(state, tmp_path):
    """write_rules empties its directory first: through a planted link above it, that would delete files
    elsewhere (as root, anywhere)."""
    from launcher.stack.prometheus_rules import write_rules

    settings = settings_in(state)
    layout = StateLayout(settings.state_dir)
    elsewhere = tmp_path / "elsewhere-prometheus"
    (elsewhere / "rules").mkdir(parents=True)
    (elsewhere / "rules" / "keep.yml").write_text("groups: []\n")
    plant(layout.generated / "prometheus", elsewhere)
    with pytest.raises(UnsafePathError):
        write_rules(settings, layout)
    assert (elsewhere / "rules" / "keep.yml").read_text() == "groups: []\n"
