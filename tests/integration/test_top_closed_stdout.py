"""`serve-with-monitoring top --once --json | head -1` against the shared real vLLM: when stdout's reader has
gone, `top` ends quietly with 141 like every subcommand (tests/unit/test_closed_stdout.py), JSON or text
through rich, buffered output or not."""

import os
import subprocess

import pytest

from launcher.commands.main import EXIT_STDOUT_CLOSED
from tests.support.launcher_process import LAUNCHER_BIN

pytestmark = pytest.mark.vllm


def _environment(unbuffered: bool) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return {**environment, "PYTHONUNBUFFERED": "1"} if unbuffered else environment


def _top_once(server, json_output: bool = True) -> list[str]:
    command = [str(LAUNCHER_BIN), "top", "--state-dir", str(server.state_dir), "--once", "--interval", "0.05"]
    return [*command, "--json"] if json_output else command


def test_top_once_json_piped_into_head_says_nothing(server):
    top = subprocess.Popen(_top_once(server), env=_environment(False), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.Popen(["head", "-c", "10"], stdin=top.stdout, stdout=subprocess.PIPE)
    top.stdout.close()  # head holds the only reading end, and closes it after 10 bytes
    first_bytes, _ = head.communicate(timeout=60)
    stderr = top.stderr.read().decode()
    assert top.wait(timeout=60) in (0, EXIT_STDOUT_CLOSED)  # 0: all of it reached the pipe before head left
    assert head.returncode == 0 and first_bytes.startswith(b"{") and len(first_bytes) == 10
    assert stderr == ""


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "PYTHONUNBUFFERED"])
@pytest.mark.parametrize("json_output", [True, False], ids=["json", "text"])
def test_top_once_into_a_closed_pipe_exits_141_without_a_word(server, unbuffered, json_output):
    process = subprocess.Popen(
        _top_once(server, json_output), env=_environment(unbuffered), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()  # the reader has gone before `top` writes anything
    stderr = process.stderr.read().decode()
    assert (process.wait(timeout=60), stderr) == (EXIT_STDOUT_CLOSED, "")
