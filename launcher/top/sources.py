"""Where `top` reads from, and the readings themselves: the launcher's status file, vLLM's and the
exporter's /metrics, vLLM's /version, and the alerts of the stack's Prometheus; for the fleet view, a
Prometheus' query API."""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from launcher.errors import UsageError
from launcher.launcher_credentials import launcher_authorization
from launcher.state_layout import StateLayout
from launcher.states import STALE_AFTER_S, SupervisorStatus, read_status

_TIMEOUT_S = 2.0
_UNVERIFIED = ssl._create_unverified_context()  # noqa: S323 - our own exporter, on this host


@dataclass
class VersionMemo:
    """vLLM's /version as last read, and the run of vLLM it came from: vLLM logs an access line for each
    request, so `top` asks once per server start rather than at every refresh."""

    run: tuple[float, ...] | None = None
    version: str | None = None


@dataclass(frozen=True)
class Sources:
    vllm_url: str
    exporter_url: str | None = None  # its /metrics
    exporter_authorization: str | None = None
    prometheus_url: str | None = None
    state_file: Path | None = None
    # The one changing part: it lives as long as the Sources, which every refresh of a `top` reads from
    version_memo: VersionMemo = field(default_factory=VersionMemo, compare=False, repr=False)


Samples = dict[str, list[tuple[dict[str, str], float]]]  # sample name -> [(labels, value)]


@dataclass
class Reading:
    """Everything read at one moment; a part that could not be read is None, with why in `problems`."""

    at: float
    status: SupervisorStatus | None = None
    vllm: Samples | None = None
    vllm_version: str | None = None
    exporter: Samples | None = None
    alerts: list[dict] | None = None
    problems: dict[str, str] = field(default_factory=dict)


def locate(state_dir: Path, vllm_url: str | None, exporter_url: str | None) -> Sources:
    """From explicit URLs, or from the running launcher's status file; one line when neither works."""
    layout = StateLayout(state_dir)
    status = read_status(layout.supervisor_state)
    fresh = status is not None and time.time() - status.updated_at < STALE_AFTER_S
    if vllm_url is None and not fresh:
        where = layout.supervisor_state
        why = "it does not exist" if status is None and not where.exists() else "it is stale or unreadable"
        raise UsageError(f"no launcher running for {state_dir} ({where}: {why}); pass --state-dir or --vllm-url")
    info = status.info if status is not None and fresh else {}
    authorization = launcher_authorization(layout, "exporter") if exporter_url is None else None
    return Sources(
        vllm_url=(vllm_url or info["vllm_url"]).rstrip("/"),
        exporter_url=exporter_url or info.get("exporter_url"),
        exporter_authorization=authorization,
        prometheus_url=info.get("prometheus_url"),
        state_file=layout.supervisor_state if info else None,
    )


def _get(url: str, authorization: str | None = None) -> tuple[str | None, str]:
    """(body, problem): the body, or None with what went wrong in a few words."""
    headers = {"User-Agent": "serve-with-monitoring top"}
    if authorization:
        headers["Authorization"] = authorization
    try:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S, context=_UNVERIFIED) as response:
            return response.read().decode(errors="replace"), ""
    except urllib.error.HTTPError as error:
        return None, f"HTTP {error.code}"
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return None, str(reason) or type(error).__name__


def parse_samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def vllm_run(status: SupervisorStatus | None, vllm: Samples | None) -> tuple[float, ...] | None:
    """What tells one start of vLLM from the next: the launcher's child pid and start time, or else the
    API server's own process_start_time_seconds; None when neither can be read."""
    child = status.child("vllm") if status is not None else None
    if child is not None and child.pid is not None:
        return (child.pid, child.started_at or 0.0)
    starts = (vllm or {}).get("process_start_time_seconds")
    return tuple(value for _, value in starts) if starts else None


def version_read_due(remembered: tuple[float, ...] | None, current: tuple[float, ...] | None) -> bool:
    """Whether /version must be asked: vLLM has started again since the remembered read, or its runs
    cannot be told apart (None), or there is no remembered read (None: a failed one is not remembered)."""
    return current is None or current != remembered


def _vllm_version(sources: Sources, run: tuple[float, ...] | None) -> str | None:
    memo = sources.version_memo
    if not version_read_due(memo.run, run):
        return memo.version
    body, _ = _get(sources.vllm_url + "/version")
    try:
        version = str(json.loads(body).get("version", "")) if body else None
    except (ValueError, AttributeError):
        version = None
    # A failed read is asked again next time; so is every read of a server whose runs cannot be told apart
    memo.run, memo.version = (run, version) if version else (None, None)
    return version


def read(sources: Sources) -> Reading:
    reading = Reading(at=time.time())
    if sources.state_file is not None:
        reading.status = read_status(sources.state_file)
    text, problem = _get(sources.vllm_url + "/metrics")
    if text is None:
        reading.problems["vllm"] = f"cannot reach vLLM at {sources.vllm_url}: {problem}"
    else:
        try:
            samples = parse_samples(text)
        except ValueError:
            samples = {}
        if not any(name.startswith("vllm:") for name in samples):
            reading.problems["vllm"] = (
                f"{sources.vllm_url}/metrics has no vllm: metrics (not vLLM, or started with --disable-log-stats?)"
            )
        else:
            reading.vllm = samples
    reading.vllm_version = _vllm_version(sources, vllm_run(reading.status, reading.vllm))
    if sources.exporter_url:
        text, problem = _get(sources.exporter_url, sources.exporter_authorization)
        if text is None:
            reading.problems["exporter"] = f"cannot reach the exporter at {sources.exporter_url}: {problem}"
        else:
            try:
                reading.exporter = parse_samples(text)
            except ValueError:
                reading.problems["exporter"] = f"{sources.exporter_url} does not answer in Prometheus' format"
    if sources.prometheus_url:
        text, problem = _get(sources.prometheus_url + "/api/v1/alerts")
        if text is None:
            reading.problems["prometheus"] = f"cannot reach Prometheus at {sources.prometheus_url}: {problem}"
        else:
            try:
                reading.alerts = [a for a in json.loads(text)["data"]["alerts"] if a.get("state") == "firing"]
            except (ValueError, KeyError, TypeError):
                reading.problems["prometheus"] = "Prometheus' /api/v1/alerts answered something unexpected"
    return reading


# -- a Prometheus' query API, for the fleet view (`top --prometheus-url`) ------------------------------------

_QUERY_TIMEOUT_S = 10.0  # a central store over a WAN, answering for many hosts

Sample = tuple[dict[str, str], float]


class PrometheusUnavailable(Exception):
    """The URL did not answer as a Prometheus: nothing reachable there, or something else."""


def prometheus_query(base_url: str) -> Callable[[str], list[Sample]]:
    """An instant query at the server's now: (labels, value) per series. PrometheusUnavailable when the URL
    does not answer as a Prometheus; ValueError, with Prometheus' words, when it refuses the query itself."""
    base_url = base_url.rstrip("/")

    def query(expr: str) -> list[Sample]:
        url = f"{base_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        request = urllib.request.Request(url, headers={"User-Agent": "serve-with-monitoring top"})
        try:
            with urllib.request.urlopen(request, timeout=_QUERY_TIMEOUT_S) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            refusal = _prometheus_error(error.read())
            if refusal is not None:
                raise ValueError(refusal) from None
            raise PrometheusUnavailable(
                f"{base_url} is not a Prometheus: /api/v1/query answered HTTP {error.code}"
            ) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise PrometheusUnavailable(
                f"cannot reach Prometheus at {base_url}: {reason or type(error).__name__}"
            ) from None
        try:
            document = json.loads(body)
            if document["status"] != "success" or document["data"]["resultType"] != "vector":
                raise TypeError
            return [(dict(item["metric"]), float(item["value"][1])) for item in document["data"]["result"]]
        except (ValueError, KeyError, TypeError, IndexError):
            raise PrometheusUnavailable(
                f"{base_url} is not a Prometheus: /api/v1/query answered something other than its JSON"
            ) from None

    return query


def _prometheus_error(body: bytes) -> str | None:
    """Prometheus' own words when it refused a query (HTTP 400 or 422, status error), else None."""
    try:
        document = json.loads(body)
        if document.get("status") == "error" and document.get("errorType"):
            return f"{document['errorType']}: {document.get('error', '')}"
    except (ValueError, AttributeError):
        pass
    return None
