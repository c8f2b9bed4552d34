"""`serve-with-monitoring incidents`: the incident bundles under STATE_DIR/incidents.

incidents [--state-dir DIR] [--json]      list them: time, reason, time to healthy again, path
incidents show ID|latest [--state-dir DIR]  the summary, then the threads that tell where it hung, first
incidents capture [--state-dir DIR]       a bundle of the running server now, without restarting it
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from launcher import defaults
from launcher.commands.vllm_evidence import incident_store
from launcher.errors import PreflightError, UsageError
from launcher.incidents.capture import Evidence, EvidenceSources, IncidentRecorder, http_text, secrets_in
from launcher.incidents.store import StoredBundle
from launcher.launcher_credentials import launcher_authorization
from launcher.settings import value_parsers as parse
from launcher.settings.argument_parsing import OneLineErrorParser, typed
from launcher.state_layout import StateLayout, default_state_dir
from launcher.states import STALE_AFTER_S, read_status
from launcher.supervision.child_spec import Incident
from launcher.supervision.process_groups import live_pids

PROG = "serve-with-monitoring incidents"
_SHOWN_FIRST = ("stacks.txt", "processes.txt")


def _parser() -> argparse.ArgumentParser:
    command = OneLineErrorParser(prog=PROG, allow_abbrev=False, description="The launcher's incident bundles.")
    command.add_argument("action", nargs="?", choices=("list", "show", "capture"), default="list")
    command.add_argument("id", nargs="?", help="with show: a bundle's id (or a unique prefix of one), or latest")
    command.add_argument("--state-dir", type=typed(parse.path), default=None, help="the launcher's state dir")
    command.add_argument("--json", action="store_true", help="with list: JSON, one object per bundle")
    return command


def run_incidents(argv: list[str]) -> int:
    options = _parser().parse_args(argv)
    layout = StateLayout(Path(options.state_dir or default_state_dir()).absolute())
    if options.action == "show":
        if not options.id:
            raise UsageError("incidents show needs a bundle id (see `incidents`), or latest")
        return _show(layout, options.id)
    if options.id:
        raise UsageError(f"incidents {options.action} takes no bundle id")
    if options.action == "capture":
        return _capture(layout)
    return _list(layout, options.json)


def _row(bundle: StoredBundle) -> dict[str, Any]:
    summary = bundle.summary
    return {
        "id": bundle.id,
        "at": summary.get("event_at"),
        "reason": summary.get("reason", bundle.id.split("-", 1)[-1]),
        "detail": summary.get("detail", ""),
        "time_to_healthy_s": summary.get("time_to_healthy_s"),
        "path": str(bundle.path),
        "not_captured": summary.get("not_captured", {}),
    }


def _list(layout: StateLayout, as_json: bool) -> int:
    rows = [_row(bundle) for bundle in incident_store(layout).bundles()]
    if as_json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print(f"no incident bundles in {layout.incidents}")
        return 0
    print(f"{'time (UTC)':<20} {'reason':<16} {'healthy again':>13}  bundle")
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["at"])) if row["at"] else "?"
        healthy = f"{row['time_to_healthy_s']:.0f} s later" if row["time_to_healthy_s"] is not None else "-"
        print(f"{when:<20} {row['reason']:<16} {healthy:>13}  {row['path']}")
    return 0


def _show(layout: StateLayout, wanted: str) -> int:
    bundle = incident_store(layout).find(wanted)
    if bundle is None:
        raise UsageError(f"no single incident bundle {wanted!r} in {layout.incidents} (see `incidents`)")
    row = _row(bundle)
    print(f"incident {row['id']}: {row['reason']}")
    print(f"  what:    {row['detail']}")
    if row["at"]:
        print(f"  when:    {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(row['at']))}")
    healthy = row["time_to_healthy_s"]
    print(f"  healthy again: {f'{healthy:.0f} s later' if healthy is not None else 'not yet, or not known'}")
    print(f"  bundle:  {row['path']}")
    for part, why in row["not_captured"].items():
        print(f"  not captured: {part}: {why}")
    for name in _SHOWN_FIRST:
        path = bundle.path / name
        if path.is_file():
            print(f"\n== {name} ==")
            print(path.read_text(errors="replace").rstrip())
    others = sorted(path.name for path in bundle.path.iterdir() if path.name not in (*_SHOWN_FIRST, "summary.json"))
    print("\nalso in the bundle: " + ", ".join(others))
    return 0


def _capture(layout: StateLayout) -> int:
    status = read_status(layout.supervisor_state)
    if status is None or time.time() - status.updated_at >= STALE_AFTER_S:
        raise PreflightError(f"no launcher running for {layout.root} (pass its --state-dir)")
    vllm = status.child("vllm")
    if vllm is None or vllm.pid is None:
        raise PreflightError(f"vLLM is not running under the launcher of {layout.root} (state: {vllm and vllm.state})")
    info = status.info
    environment = _environment_of(vllm.pid)
    sources = EvidenceSources(
        log_path=layout.log_file("vllm"),
        argv=tuple(shlex.split(info.get("vllm_command", ""))),
        versions={"vllm": info.get("vllm_version", "")},
        secrets=secrets_in(environment),
        exporter_url=info.get("exporter_url"),
        exporter_authorization=launcher_authorization(layout, "exporter"),
    )
    keep = int(info.get("incident_keep", defaults.INCIDENT_KEEP)) or defaults.INCIDENT_KEEP
    recorder = IncidentRecorder(incident_store(layout, keep), sources, defaults.INCIDENT_CAPTURE_BUDGET_S)
    page = http_text(info["vllm_url"] + "/metrics", None, 5.0) if info.get("vllm_url") else None
    incident = Incident("on_demand", "taken on demand (incidents capture)", time.time(), tuple(vllm.transitions))
    evidence = Evidence(vllm.pid, live_pids(vllm.pid), page, time.time() if page is not None else None)
    path = recorder.record(incident, evidence)
    if path is None:
        print(f"{PROG}: error: no bundle could be written under {layout.incidents}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _environment_of(pid: int) -> dict[str, str]:
    """The running server's environment (readable by its own user): its API key and hub token are secrets."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if b"=" in item)
    return {name: value for name, _, value in pairs}
