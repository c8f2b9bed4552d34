"""Where each alert's runbook is: a section of docs/runbooks.md, named after the alert."""

from __future__ import annotations

# Where docs/runbooks.md is published; the launcher's --runbook-base-url points elsewhere.
RUNBOOK_BASE_URL = "https://github.com/serve-with-monitoring/serve-with-monitoring/blob/main/docs/runbooks.md"


def runbook_url(base: str, alert: str) -> str:
    return f"{base}#{alert.lower()}"
