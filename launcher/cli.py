"""The console script: `serve-with-monitoring [MODEL] [options]` and its subcommands."""

from __future__ import annotations

import logging
import os
import sys

from launcher.command_line import PROG, help_text, parse_command_line, version_text
from launcher.errors import EXIT_ENVIRONMENT, LauncherError, StopRequested


def _configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("SWM_LOG_LEVEL", "INFO").upper(),
        format=f"%(asctime)s {PROG} %(levelname)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _configure_logging()
    try:
        if argv[:1] == ["exporter"]:
            from observability.exporter.main import run_exporter

            return run_exporter(argv[1:])
        if argv[:1] == ["systemd-unit"]:
            from launcher.systemd_unit import run_systemd_unit

            return run_systemd_unit(argv[1:])
        if argv[:1] == ["health"]:
            from launcher.health_command import run_health

            return run_health(argv[1:])
        if argv[:1] == ["bench"]:
            from launcher.bench_command import run_bench

            return run_bench(argv[1:])
        command_line = parse_command_line(argv)
        if command_line.wants_help:
            print(help_text())
            return 0
        if command_line.wants_version:
            print(version_text())
            return 0
        from launcher.serve import serve

        return serve(command_line)
    except StopRequested as stop:
        print(f"{PROG}: {stop}", file=sys.stderr)
        return stop.exit_code
    except LauncherError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return error.exit_code
    except OSError as error:  # a full disk, a read-only state dir: say what and where, in one line
        where = f" ({error.filename})" if error.filename else ""
        print(f"{PROG}: error: {error.strerror or error}{where}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
