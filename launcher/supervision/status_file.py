"""Writes the supervisor's status file (launcher/states.py holds its types), atomically, so that a reader
never sees half of it."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from launcher.file_writes import write_atomically
from launcher.states import SupervisorStatus


def write_status(path: Path, status: SupervisorStatus) -> None:
    write_atomically(path, json.dumps(asdict(status), indent=1, sort_keys=True))
