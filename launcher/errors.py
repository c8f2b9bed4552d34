"""Errors the launcher reports as one line, and the exit codes they map to."""

from __future__ import annotations

EXIT_OK = 0
EXIT_GAVE_UP = 1  # vLLM kept failing after it had been started
EXIT_USAGE = 2  # a bad command line, config file or value: nothing started
EXIT_ENVIRONMENT = 3  # a pre-flight check on this machine failed: nothing started
EXIT_NEEDS_A_PERSON = 4  # restarting cannot help (a lost GPU, stall after stall): reset the GPU or drain the node
ARGPARSE_EXIT = 2  # what vLLM (and any argparse program) exits with when it rejects its command line


class LauncherError(Exception):
    """A failure the user can act on. The CLI prints it as one line, without a traceback."""

    exit_code = EXIT_GAVE_UP

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(LauncherError):
    exit_code = EXIT_USAGE


class PreflightError(LauncherError):
    exit_code = EXIT_ENVIRONMENT


class StopRequested(LauncherError):
    """A stop signal arrived before vLLM started: nothing to stop, a clean exit."""

    exit_code = EXIT_OK
