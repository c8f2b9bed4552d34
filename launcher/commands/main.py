"""The console script: `serve-with-monitoring [MODEL] [options]` and its subcommands."""

from __future__ import annotations

import logging
import os
import select
import signal
import sys

from launcher.errors import EXIT_ENVIRONMENT, LauncherError, StopRequested, UsageError
from launcher.settings.command_line import PROG, help_text, parse_command_line, version_text
from launcher.settings.secret_options import API_KEY, BY_FLAG, MOVED_FROM_ARGV, check_secret, split_secrets


def _configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("SWM_LOG_LEVEL", "INFO").upper(),
        format=f"%(asctime)s {PROG} %(levelname)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stderr,
    )


# What a shell reports for a tool killed by SIGPIPE (`seq 1000000 | head -1` under `set -o pipefail`):
# the output was cut short, which 0 would hide and 1 (vLLM gave up, or unreachable for `top`) would blur.
EXIT_STDOUT_CLOSED = 128 + signal.SIGPIPE


def hide_secrets(argv: list[str]) -> None:
    """/proc/PID/cmdline is readable by every local user: a launcher given --api-key or --hf-token runs itself
    again without them, with each in its environment variable (readable by its own user only), where vLLM
    reads it. A --hf-token on the command line wins over an HF_TOKEN already set; two API keys are refused."""
    kept, found = split_secrets(argv)
    if not found:
        return
    environment = dict(os.environ)
    for option, values in found.items():
        for value in values:
            check_secret(value, option, option.flag)
        ambiguous = option is API_KEY and os.environ.get(option.variable) not in (None, values[0])
        if len(set(values)) > 1 or ambiguous:
            raise UsageError(
                f"more than one {option.what} given ({option.flag}, {option.variable}): vLLM reads one; give one"
            )
        environment[option.variable] = values[0]
    environment[MOVED_FROM_ARGV] = ",".join(option.variable for option in found)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "launcher", *kept], environment)  # noqa: S606 - ourselves


def _say_where_the_secrets_went() -> None:
    """After hide_secrets: the note stays in the environment for pre-flight (vllm_server/command.py)."""
    moved = set(os.environ.get(MOVED_FROM_ARGV, "").split(","))
    for option in BY_FLAG.values():
        if option.variable in moved:
            logging.getLogger(__name__).warning(
                "%s was on the command line, where other local users could see it while the launcher started; "
                "it now reaches vLLM as %s. Prefer %s FILE",
                option.flag,
                option.variable,
                option.file_option,
            )


def _stdout_closed() -> bool:
    """Whether stdout's reader has gone (`| head` has read enough), as opposed to an EPIPE from a socket,
    which is a real error to report."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    poller = select.poll()
    poller.register(descriptor, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _quit_quietly_on_closed_stdout() -> int:
    """Like a Unix tool killed by SIGPIPE: no message. SIGPIPE itself stays ignored (Python's default):
    its default action would also kill the launcher on any socket closed under it. devnull goes over
    stdout so that the interpreter's last flush of what is still buffered does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_STDOUT_CLOSED


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _configure_logging()
    try:
        if argv[:1] == ["exporter"]:
            from launcher.commands.exporter import run_exporter

            return run_exporter(argv[1:])
        if argv[:1] == ["systemd-unit"]:
            from launcher.commands.systemd_unit import run_systemd_unit

            return run_systemd_unit(argv[1:])
        if argv[:1] == ["health"]:
            from launcher.commands.health import run_health

            return run_health(argv[1:])
        if argv[:1] == ["top"]:
            from launcher.top.command import run_top

            return run_top(argv[1:])
        if argv[:1] == ["bench"]:
            from launcher.commands.bench import run_bench

            return run_bench(argv[1:])
        if argv[:1] == ["incidents"]:
            from launcher.commands.incidents import run_incidents

            return run_incidents(argv[1:])
        hide_secrets(argv)  # the main job only: the subcommands above take no secret to hide
        _say_where_the_secrets_went()
        command_line = parse_command_line(argv)
        if command_line.wants_help:
            print(help_text())
            return 0
        if command_line.wants_version:
            print(version_text())
            return 0
        from launcher.commands.serve import serve

        return serve(command_line)
    except StopRequested as stop:
        print(f"{PROG}: {stop}", file=sys.stderr)
        return stop.exit_code
    except LauncherError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return error.exit_code
    except OSError as error:  # a full disk, a read-only state dir: say what and where, in one line
        if isinstance(error, BrokenPipeError) and _stdout_closed():
            return _quit_quietly_on_closed_stdout()
        where = f" ({error.filename})" if error.filename else ""
        print(f"{PROG}: error: {error.strerror or error}{where}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    try:
        try:
            code = main()
        finally:  # also after argparse's --help, which exits: here a closed stdout can still be caught
            sys.stdout.flush()
    except BrokenPipeError:
        code = _quit_quietly_on_closed_stdout()
    sys.exit(code)


if __name__ == "__main__":
    run()
