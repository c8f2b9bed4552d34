"""`serve-with-monitoring health`: exit 0 when the supervised vLLM answers GET /health with 200.

Port-agnostic (it reads where vLLM listens from the launcher's state), so it suits a container
HEALTHCHECK whatever --port the user chose. It runs where the launcher runs (the same pid namespace): the
launcher's pid in that state must be alive.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from launcher import defaults
from launcher.http_probe import http_status
from launcher.settings import value_parsers as parse
from launcher.settings.argument_parsing import OneLineErrorParser
from launcher.state_layout import StateLayout, default_state_dir
from launcher.states import read_status


def run_health(argv: list[str]) -> int:
    command = OneLineErrorParser(prog="serve-with-monitoring health", allow_abbrev=False)
    command.add_argument("--state-dir", default=None, help="the launcher's state dir (default: the launcher's default)")
    options = command.parse_args(argv)
    root = parse.path(options.state_dir) if options.state_dir else default_state_dir()
    status = read_status(StateLayout(Path(root).absolute()).supervisor_state)
    url = status.info.get("vllm_url") if status else None
    if not url:
        print(f"unhealthy: no launcher state in {root}", file=sys.stderr)
        return 1
    if not _running(status.launcher_pid):
        # Its vLLM went with it (the orphan guard); whatever answers that port now is not the launcher's.
        print(f"unhealthy: the launcher (pid {status.launcher_pid}) that wrote {root} is not running", file=sys.stderr)
        return 1
    code = http_status(url + "/health", timeout=defaults.HEALTH_TIMEOUT_S)
    if code != 200:
        print(f"unhealthy: GET {url}/health: {code or 'no answer'}", file=sys.stderr)
        return 1
    print(f"healthy: GET {url}/health: 200")
    return 0


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True
