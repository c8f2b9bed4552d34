"""`serve-with-monitoring systemd-unit MODEL | head -1` and the like: when stdout's reader has gone, every
subcommand ends quietly with 141, as a Unix tool killed by SIGPIPE does, buffered output or not. Here with
subcommands that print without any server; `top --once` against the real vLLM is
tests/integration/test_top_closed_stdout.py."""

import errno
import os
import subprocess
import sys

import pytest

from launcher.commands.main import EXIT_STDOUT_CLOSED, main
from launcher.errors import EXIT_ENVIRONMENT

PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# `top`'s text output goes through its rich console, whose own answer to a closed pipe is exit 1. This runs
# the launcher with a `top` that prints a page through that console and reads nothing.
TOP_CONSOLE_PRINTS = (
    "import sys\n"
    "import launcher.top.command as top\n"
    "from launcher.commands.main import run\n"
    "top.run_top = lambda argv: top._Console(width=100, no_color=True).print('a line of top\\n' * 500) or 0\n"
    "sys.argv[1:] = ['top']\n"
    "run()\n"
)


def _environment(unbuffered: bool) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return {**environment, "PYTHONUNBUFFERED": "1"} if unbuffered else environment


def _launcher(*args: str) -> list[str]:
    return [sys.executable, "-m", "launcher", *args]


def test_a_subcommand_piped_into_head_says_nothing():
    unit = subprocess.Popen(
        _launcher("systemd-unit", "some/model"),
        cwd=PROJECT,
        env=_environment(False),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    head = subprocess.Popen(["head", "-c", "10"], stdin=unit.stdout, stdout=subprocess.PIPE)
    unit.stdout.close()  # head holds the only reading end, and closes it after 10 bytes
    first_bytes, _ = head.communicate(timeout=60)
    stderr = unit.stderr.read().decode()
    assert unit.wait(timeout=60) in (0, EXIT_STDOUT_CLOSED)  # 0: all of it reached the pipe before head left
    assert head.returncode == 0 and first_bytes == b"# serve-wi"
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
@pytest.mark.parametrize(
    "command",
    [_launcher("systemd-unit", "some/model"), [sys.executable, "-c", TOP_CONSOLE_PRINTS]],
    ids=["print", "top's rich console"],  # rich alone would exit 1
)
def test_output_into_a_closed_pipe_exits_141_without_a_word(command, unbuffered):
    assert _into_a_closed_pipe(command, unbuffered) == (EXIT_STDOUT_CLOSED, "")


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["health", "--help"], ["incidents", "--help"]])
def test_other_subcommands_into_a_closed_pipe_exit_141_without_a_word(args):
    assert _into_a_closed_pipe(_launcher(*args), unbuffered=False) == (EXIT_STDOUT_CLOSED, "")


def test_a_broken_pipe_elsewhere_is_still_an_error(monkeypatch, capfd):
    """A socket closed under the launcher also raises BrokenPipeError; only a closed stdout is quiet."""

    def peer_went_away(argv: list[str]) -> int:
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    monkeypatch.setattr("launcher.commands.health.run_health", peer_went_away)
    assert main(["health"]) == EXIT_ENVIRONMENT
    assert "error: Broken pipe" in capfd.readouterr().err
