"""`serve-with-monitoring top --once --json | head -1` and the like: when stdout's reader has gone, every
subcommand ends quietly with 141, as a Unix tool killed by SIGPIPE does, buffered output or not."""

import errno
import os
import subprocess
import sys

import pytest

from launcher.commands.main import EXIT_STDOUT_CLOSED, main
from launcher.errors import EXIT_ENVIRONMENT
from tests.support.vllm_stub import VllmStub

PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _environment(unbuffered: bool) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return {**environment, "PYTHONUNBUFFERED": "1"} if unbuffered else environment


def _launcher(*args: str) -> list[str]:
    return [sys.executable, "-m", "launcher", *args]


def _top_once_json(url: str) -> list[str]:
    return _launcher("top", "--once", "--json", "--vllm-url", url, "--interval", "0.05")


def test_top_once_json_piped_into_head_says_nothing():
    with VllmStub() as vllm:
        top = subprocess.Popen(
            _top_once_json(vllm.url),
            cwd=PROJECT,
            env=_environment(False),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        head = subprocess.Popen(["head", "-c", "10"], stdin=top.stdout, stdout=subprocess.PIPE)
        top.stdout.close()  # head holds the only reading end, and closes it after 10 bytes
        first_bytes, _ = head.communicate(timeout=60)
        stderr = top.stderr.read().decode()
        assert top.wait(timeout=60) in (0, EXIT_STDOUT_CLOSED)  # 0: all of it reached the pipe before head left
    assert head.returncode == 0 and first_bytes.startswith(b"{") and len(first_bytes) == 10
    assert stderr == ""


def _into_a_closed_pipe(command: list[str], unbuffered: bool) -> tuple[int, str]:
    """Its exit status and stderr when stdout's reader has gone before it writes anything: no timing
    decides whether the write meets a closed pipe, unlike with `| head`."""
    process = subprocess.Popen(
        command, cwd=PROJECT, env=_environment(unbuffered), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()
    stderr = process.stderr.read().decode()
    return process.wait(timeout=60), stderr


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "PYTHONUNBUFFERED"])
@pytest.mark.parametrize("json_output", [True, False], ids=["json", "text"])
def test_top_once_into_a_closed_pipe_exits_141_without_a_word(unbuffered, json_output):
    with VllmStub() as vllm:
        command = _top_once_json(vllm.url)
        if not json_output:
            command.remove("--json")  # rich prints this one: rich alone would exit 1
        assert _into_a_closed_pipe(command, unbuffered) == (EXIT_STDOUT_CLOSED, "")


@pytest.mark.parametrize("args", [["--version"], ["systemd-unit", "some/model"], ["health", "--help"]])
def test_other_subcommands_into_a_closed_pipe_exit_141_without_a_word(args):
    assert _into_a_closed_pipe(_launcher(*args), unbuffered=False) == (EXIT_STDOUT_CLOSED, "")


def test_a_broken_pipe_elsewhere_is_still_an_error(monkeypatch, capfd):
    """A socket closed under the launcher also raises BrokenPipeError; only a closed stdout is quiet."""

    def peer_went_away(argv: list[str]) -> int:
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    monkeypatch.setattr("launcher.commands.health.run_health", peer_went_away)
    assert main(["health"]) == EXIT_ENVIRONMENT
    assert "error: Broken pipe" in capfd.readouterr().err
