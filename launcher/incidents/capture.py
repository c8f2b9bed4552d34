"""Takes one bundle, under a hard time budget, from what is still alive: the stacks and process states first
(they die with the processes), then the log tail, the last /metrics page, the exporter's view of the GPUs,
the state transitions and the versions. What does not fit in the budget, or cannot be read, is named in
summary.json with why; the rest is captured all the same. A capture never raises: evidence is worth having,
never worth a launcher that stops supervising."""

from __future__ import annotations

import logging
import ssl
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from launcher import __version__
from launcher.helper_environment import names_a_secret
from launcher.incidents import process_tree, stacks
from launcher.incidents.redaction import Redactor
from launcher.incidents.store import SUMMARY, Bundle, IncidentStore
from launcher.supervision.child_spec import Incident

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 500
_GPU_FAMILIES = ("DCGM_", "swm_gpu_", "swm_nvml_")  # the exporter's view of the GPUs, not of the host
_NATIVE_NEEDS_S = 3.0  # native frames are only worth it with this much budget left
_HTTP_TIMEOUT_S = 2.0
_UNVERIFIED = ssl._create_unverified_context()  # noqa: S323 - our own exporter, dialled on this host


@dataclass(frozen=True)
class EvidenceSources:
    """Where one server's evidence is, known at start-up."""

    log_path: Path
    argv: tuple[str, ...]
    versions: dict[str, str]
    secrets: tuple[str, ...] = ()  # the API key, the hub token: never written
    exporter_url: str | None = None  # its /metrics
    exporter_authorization: str | None = None


@dataclass(frozen=True)
class Evidence:
    """What the child knows at the moment of the incident."""

    root_pid: int | None  # vLLM's API server, while it lives
    group_pids: list[int] = field(default_factory=list)  # what is left of its process group
    metrics_page: str | None = None  # the last /metrics page read
    metrics_read_at: float | None = None


def secrets_in(environment: dict[str, str]) -> tuple[str, ...]:
    """Values of variables whose name says they are secret (HF_TOKEN, VLLM_API_KEY, AWS_SECRET_ACCESS_KEY ...):
    vLLM's log may echo them, and no bundle may hold them."""
    return tuple(value for name, value in environment.items() if value and names_a_secret(name))


class _Budget:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self._deadline - time.monotonic()


class IncidentRecorder:
    def __init__(
        self,
        store: IncidentStore,
        sources: EvidenceSources,
        budget_s: float,
        stack_tool: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.sources = sources
        self.budget_s = budget_s
        self.stack_tool = stack_tool if stack_tool is not None else stacks.find_py_spy()
        self._clock = clock
        self._redactor = Redactor(sources.secrets)
        self._last: tuple[Bundle, dict[str, Any]] | None = None

    def record(self, incident: Incident, evidence: Evidence) -> Path | None:
        started = time.monotonic()
        try:
            bundle = self.store.create(incident.at, incident.reason, self._redactor)
        except OSError as error:
            log.error("cannot write an incident bundle under %s: %s", self.store.root, error)
            return None
        summary: dict[str, Any] = {
            "id": bundle.id,
            "reason": incident.reason,
            "detail": incident.detail,
            "event_at": incident.at,
            "healthy_again_at": None,
            "not_captured": {},
        }
        budget = _Budget(self.budget_s)
        try:
            self._capture(bundle, incident, evidence, budget, summary)
        except Exception as error:  # a bug in one part must not cost the restart (logged with its traceback)
            summary["not_captured"]["bundle"] = f"the capture failed: {type(error).__name__}: {error}"
            log.exception("incident capture failed")
        summary["captured_at"] = self._clock()
        summary["capture_s"] = round(time.monotonic() - started, 3)
        summary["files"] = sorted(path.name for path in bundle.path.iterdir() if not path.name.startswith("."))
        self._write_summary(bundle, summary, replace=False)
        self._last = (bundle, summary)
        for removed in self.store.prune(keep_also=bundle.path):
            log.info("removed the oldest incident bundle %s (keeping %d)", removed.name, self.store.keep)
        return bundle.path

    def mark_healthy_again(self, at: float) -> None:
        """The server the last bundle was taken of (or its successor) serves again: `incidents` says how long
        that took."""
        if self._last is None or self._last[1].get("healthy_again_at") is not None:
            return
        bundle, summary = self._last
        summary["healthy_again_at"] = at
        summary["time_to_healthy_s"] = round(at - summary["event_at"], 1)
        self._write_summary(bundle, summary, replace=True)

    def _write_summary(self, bundle: Bundle, summary: dict[str, Any], replace: bool) -> None:
        try:
            bundle.write_json(SUMMARY, summary, replace=replace)
        except OSError as error:
            log.error("cannot write %s: %s", bundle.path / SUMMARY, error)

    # -- the parts, most perishable first ---------------------------------------------------------

    def _capture(
        self, bundle: Bundle, incident: Incident, evidence: Evidence, budget: _Budget, summary: dict[str, Any]
    ) -> None:
        missing: dict[str, str] = summary["not_captured"]
        pids = process_tree.tree_pids(evidence.root_pid, evidence.group_pids)
        rows = process_tree.snapshot(pids, evidence.root_pid)
        summary["pids"] = {f"{row.role} {row.pid}": row.pid for row in rows}
        if rows:
            bundle.write_text("processes.txt", process_tree.render(rows))
            bundle.write_json("processes.json", [row.as_json() for row in rows])
        else:
            missing["processes"] = "no vLLM process was left to look at"
        roles = {row.pid: row.role for row in rows if row.state != "Z"}
        if roles:
            self._stacks(bundle, roles, budget, missing)
        self._part(budget, missing, "log", lambda: self._log_tail(bundle))
        self._part(budget, missing, "metrics", lambda: self._metrics(bundle, evidence))
        bundle.write_json("transitions.json", [asdict(transition) for transition in incident.transitions])
        versions = {**self.sources.versions, **_torch(), "launcher": __version__}
        self._part(budget, missing, "gpus", lambda: self._gpus(bundle, budget, versions))
        bundle.write_json("versions.json", versions)
        bundle.write_text("command.txt", " ".join(self._redactor.redact_argv(self.sources.argv)) + "\n")
        engines = {pid: role for pid, role in roles.items() if role != "API server"}
        if engines and budget.left() >= _NATIVE_NEEDS_S and self.stack_tool is not None:
            native = stacks.read_stacks(self.stack_tool, engines, min(budget.left() - 1.0, 5.0), native=True)
            if native.threads:
                bundle.write_text("native-stacks.txt", stacks.render(stacks.telling_first(native.threads), {}))
        elif engines:
            missing["native-stacks"] = "skipped: not enough of the capture budget left"

    def _stacks(self, bundle: Bundle, roles: dict[int, str], budget: _Budget, missing: dict[str, str]) -> None:
        reading = stacks.read_stacks(self.stack_tool, roles, max(0.5, min(budget.left() / 2, 8.0)))
        if reading.threads:
            bundle.write_text("stacks.txt", stacks.render(stacks.telling_first(reading.threads), reading.problems))
            bundle.write_json("stacks.json", {str(pid): document for pid, document in reading.raw.items()})
        for pid, problem in reading.problems.items():
            missing[f"stacks of pid {pid} ({roles[pid]})"] = problem

    def _part(self, budget: _Budget, missing: dict[str, str], name: str, take: Callable[[], str | None]) -> None:
        if budget.left() <= 0:
            missing[name] = f"skipped: the {budget.seconds:g} s capture budget was spent"
            return
        try:
            problem = take()
        except OSError as error:
            problem = f"{type(error).__name__}: {error.strerror or error}"
        if problem:
            missing[name] = problem

    def _log_tail(self, bundle: Bundle) -> str | None:
        lines = tail(self.sources.log_path, LOG_TAIL_LINES)
        if lines is None:
            return f"cannot read {self.sources.log_path}"
        bundle.write_text("vllm-log-tail.txt", "".join(lines))
        return None

    def _metrics(self, bundle: Bundle, evidence: Evidence) -> str | None:
        if evidence.metrics_page is None:
            return "no /metrics page had been read from this vLLM yet"
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(evidence.metrics_read_at or self._clock()))
        bundle.write_text("vllm-metrics.txt", f"# read from vLLM at {when}\n" + evidence.metrics_page)
        return None

    def _gpus(self, bundle: Bundle, budget: _Budget, versions: dict[str, str]) -> str | None:
        if self.sources.exporter_url is None:
            return "no exporter runs (--no-exporter)"
        page = http_text(
            self.sources.exporter_url, self.sources.exporter_authorization, min(_HTTP_TIMEOUT_S, budget.left())
        )
        if page is None:
            return f"the exporter at {self.sources.exporter_url} did not answer"
        kept = [line for line in page.splitlines() if _is_gpu_line(line)]
        bundle.write_text("gpus.txt", "\n".join(kept) + "\n")
        versions.update(driver_versions("\n".join(kept) + "\n"))
        return None


def _is_gpu_line(line: str) -> bool:
    words = line.split(" ", 3)
    name = words[2] if line.startswith("# ") and len(words) > 2 else line
    return name.startswith(_GPU_FAMILIES)


def driver_versions(page: str) -> dict[str, str]:
    """The driver and CUDA versions the exporter read from NVML (swm_gpu_driver_info's labels)."""
    try:
        for family in text_string_to_metric_families(page):
            if family.name == "swm_gpu_driver_info" and family.samples:
                labels = family.samples[0].labels
                return {key: labels[key] for key in ("driver_version", "cuda_version") if key in labels}
    except ValueError:
        pass
    return {}


def _torch() -> dict[str, str]:
    try:
        return {"torch": metadata.version("torch")}
    except metadata.PackageNotFoundError:
        return {}


def tail(path: Path, count: int) -> list[str] | None:
    """The last `count` lines, read from the end: a log may be gigabytes."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            end = handle.tell()
            chunk, data = 65536, b""
            while end > 0 and data.count(b"\n") <= count:
                start = max(0, end - chunk)
                handle.seek(start)
                data = handle.read(end - start) + data
                end = start
    except OSError:
        return None
    return [line + "\n" for line in data.decode(errors="replace").splitlines()[-count:]]


def http_text(url: str, authorization: str | None, timeout_s: float) -> str | None:
    if timeout_s <= 0:
        return None
    headers = {"Authorization": authorization} if authorization else {}
    try:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=timeout_s, context=_UNVERIFIED) as response:
            return response.read().decode(errors="replace")
    except (OSError, ValueError):
        return None
