"""A helper's HTTP endpoint behind a web config (the exporter's, Prometheus'): what the helper is given, and
how the launcher's own Prometheus and probes reach it.

The user's web config is checked, then written again into the state dir (0600) with one more basic-auth
user, the launcher's own, whose password is generated once and kept 0600: the local Prometheus scrapes
with it (`password_file`, never inline) and the launcher probes with it. The user's users stay for their
own scrapers, a central Prometheus say. A web config with TLS only gets no user added.

Every key of the user's file is written again (a serializer, never text), and each is either applied or
refused before anything starts: the exporter says which it applies (exporter_web_config.py); for Prometheus,
which applies them itself, `promtool check web-config` judges the file where promtool is at hand.
A web config that demands a client certificate is refused: the launcher's probe and its Prometheus
present none, so the helper would never become healthy.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from launcher.errors import UsageError
from launcher.file_writes import read_private, write_private
from launcher.helper_environment import helper_environment
from launcher.installed_tools import find_tool
from launcher.launcher_credentials import LAUNCHER_USER, basic_authorization
from launcher.launcher_credentials import password_file as launcher_password_file
from launcher.state_layout import StateLayout
from observability.exporter.exporter_web_config import load_exporter_web_config
from observability.exporter.web_config import CLIENT_CERT_REQUIRED, WebConfig, WebConfigError, load_web_config

_PROMTOOL_TIMEOUT_S = 30.0


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
        return basic_authorization(self.username, self.password)


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
    try:
        config = load_exporter_web_config(user_config) if name == "exporter" else load_web_config(user_config)
    except WebConfigError as error:
        raise UsageError(str(error)) from None
    if config.client_auth_type in CLIENT_CERT_REQUIRED:
        raise UsageError(
            f"web config {user_config}: tls_server_config.client_auth_type: {config.client_auth_type} turns away "
            f"the launcher's probe and its Prometheus, which present no client certificate, so the {name} would "
            "never become healthy; use VerifyClientCertIfGiven with basic_auth_users (a client that presents a "
            f"certificate must present a valid one, the others a password), or run the {name} yourself"
        )
    if name == "prometheus":
        check_with_promtool(user_config)
    directory = layout.generated / name
    username = password = password_file = None
    if config.auth:
        password_file = launcher_password_file(layout, name)
        password = launcher_password(password_file)
        username = LAUNCHER_USER
        config = config.with_user(username, password)
    effective = write_web_config(config, directory / "web-config.yml")
    return SecuredEndpoint(config.scheme, effective, username, password_file, password)


def check_with_promtool(path: Path) -> None:
    """Prometheus' own verdict on a web config, in one line: which keys it knows depends on its version."""
    promtool = find_tool("promtool")
    if promtool is None:
        return
    try:
        result = subprocess.run(
            [str(promtool), "check", "web-config", str(path)],
            capture_output=True,
            text=True,
            timeout=_PROMTOOL_TIMEOUT_S,
            check=False,
            env=helper_environment(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return  # no verdict from promtool: Prometheus itself will say
    if result.returncode != 0:
        lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        detail = " ".join(lines).replace(f"{path} FAILED: ", "") or "promtool check web-config failed"
        raise UsageError(f"web config {path}: this Prometheus refuses it (promtool check web-config): {detail}")


def launcher_password(path: Path) -> str:
    """The launcher's own basic-auth password, made once and kept 0600 in the state dir."""
    existing = (read_private(path) or "").strip()  # never through a link; put back to 0600
    if existing:
        return existing
    password = secrets.token_urlsafe(24)
    write_private(path, password + "\n")
    return password


def write_web_config(config: WebConfig, path: Path) -> Path:
    write_private(
        path,
        "# Generated by serve-with-monitoring; edit your own web config, not this.\n"
        + yaml.safe_dump(config.document(), sort_keys=False),
    )
    return path
