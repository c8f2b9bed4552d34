"""A helper's HTTP endpoint behind a web config (the exporter's, Prometheus'): what the helper is given, and
how the launcher's own Prometheus and probes reach it.

The user's web config is checked, then written again into the state dir (0600) with one more basic-auth
user, the launcher's own, whose password is generated once and kept 0600: the local Prometheus scrapes
with it (`password_file`, never inline) and the launcher probes with it. The user's users stay for their
own scrapers, a central Prometheus say. A web config with TLS only gets no user added.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.state_layout import StateLayout
from launcher.web_config import LAUNCHER_USER, launcher_password, load_web_config, write_web_config


def exporter_exposure_warning(host: str, port: int) -> str:
    return (
        f"the exporter listens on {host}:{port} without a web config: anyone who can reach it reads every "
        "GPU process's pid and name (/metrics) and this host's targets (/sd); pass --web-config-file "
        "(--exporter-web-config on the launcher) for TLS and basic auth"
    )


@dataclass(frozen=True)
class SecuredEndpoint:
    scheme: str = "http"
    web_config_file: Path | None = None  # what the helper is started with
    username: str | None = None
    password_file: Path | None = None
    password: str | None = None

    def scrape_settings(self) -> dict[str, Any]:
        """Merged into a Prometheus scrape_config for this endpoint."""
        settings: dict[str, Any] = {}
        if self.scheme == "https":
            settings["scheme"] = "https"
            # Our own child, dialled on loopback: the connection never leaves the host, and the
            # certificate is made for the names others dial. TLS is there for the scrapers off the host.
            settings["tls_config"] = {"insecure_skip_verify": True}
        if self.username is not None and self.password_file is not None:
            settings["basic_auth"] = {"username": self.username, "password_file": str(self.password_file)}
        return settings

    def authorization(self) -> str | None:
        """The Authorization header for the launcher's probes, when the endpoint wants one."""
        if self.username is None or self.password is None:
            return None
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"


@dataclass(frozen=True)
class StackAccess:
    """How the launcher and its Prometheus reach the exporter and Prometheus itself."""

    exporter: SecuredEndpoint = SecuredEndpoint()
    prometheus: SecuredEndpoint = SecuredEndpoint()


OPEN = StackAccess()


def secure_endpoint(name: str, user_config: Path | None, layout: StateLayout) -> SecuredEndpoint:
    """Checks `user_config` (one-line errors; nothing has started) and writes what `name` runs with."""
    if user_config is None:
        return SecuredEndpoint()
    config = load_web_config(user_config)
    directory = layout.generated / name
    username = password = password_file = None
    if config.auth:
        password_file = directory / "launcher-password"
        password = launcher_password(password_file)
        username = LAUNCHER_USER
        config = config.with_user(username, password)
    effective = write_web_config(config, directory / "web-config.yml")
    return SecuredEndpoint(config.scheme, effective, username, password_file, password)
