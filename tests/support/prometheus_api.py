"""A few calls of Prometheus' HTTP API, for tests that query the real Prometheus."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request


class PrometheusApi:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def _get(self, path: str, **params: str) -> dict:
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params, doseq=True)}"
        with urllib.request.urlopen(url, timeout=30) as response:
            document = json.loads(response.read())
        if document.get("status") != "success":
            raise AssertionError(f"{path} {params}: {document}")
        return document["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params = {"query": expr, **({"time": f"{at:.3f}"} if at is not None else {})}
        return self._get("/api/v1/query", **params)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        return self._get("/api/v1/query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step:g}")[
            "result"
        ]

    def label_values(self, label: str, match: str) -> list[str]:
        return self._get(f"/api/v1/label/{label}/values", **{"match[]": match})

    def targets(self) -> list[dict]:
        return self._get("/api/v1/targets")["activeTargets"]

    def loaded_config(self) -> str:
        return self._get("/api/v1/status/config")["yaml"]

    def rules(self) -> list[dict]:
        return self._get("/api/v1/rules")["groups"]

    def wait_for(self, expr: str, timeout: float = 90.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(expr)
            if result:
                return result
            time.sleep(1.0)
        raise AssertionError(f"no data for {expr} within {timeout} s")


def ready_prometheus(base_url: str, timeout: float = 60.0) -> PrometheusApi:
    """The API of a Prometheus once its /-/ready answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base_url + "/-/ready", timeout=5) as response:
                if response.status == 200:
                    return PrometheusApi(base_url)
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"Prometheus at {base_url} never became ready")
