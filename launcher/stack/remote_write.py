"""The local Prometheus' remote_write section and external labels, from --remote-write URLs, the entries of
--remote-write-config and --cluster; judged before anything starts.

Every entry gets one relabelling first: a loopback `instance` (127.0.0.1:8000, the same on every host) becomes
HOST:PORT, so that a central store's rules and dashboards, which group by instance, tell hosts apart as they do
for a fleet it scrapes itself. No series is dropped on the way: Prometheus 2.42 counts relabelling drops in
prometheus_remote_storage_samples_dropped_total, which an alert watches.
"""

from __future__ import annotations

import copy
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.errors import UsageError
from launcher.file_writes import open_directory, write_for_container
from launcher.settings.plain_yaml import PlainYamlError, load_plain_yaml, read_bounded
from launcher.settings.settings import Settings
from launcher.settings.shown_values import shown
from launcher.settings.value_parsers import remote_write_url
from observability.exporter.labels import default_hostname

# Inline secrets, each with the key that reads it from a file instead (None: Prometheus has no file form).
# (section, key): section None is the entry itself.
INLINE_SECRETS: dict[tuple[str | None, str], str | None] = {
    ("basic_auth", "password"): "password_file",
    ("authorization", "credentials"): "credentials_file",
    (None, "bearer_token"): "bearer_token_file",
    ("oauth2", "client_secret"): "client_secret_file",
    ("sigv4", "secret_key"): None,
}
# Header names that carry a credential (X-API-Key, X-Auth-Token ...): Prometheus refuses Authorization
# itself, but not these, and a header's value is inline.
_SECRET_HEADER_WORDS = ("key", "token", "secret", "passw", "auth", "credential", "cookie")
_LOOPBACK_INSTANCE = r"(?:127\.0\.0\.1|localhost|\[::1\]):([0-9]+)"
# Where compose's Prometheus sees the copies of the credential files (deploy/docker-compose.yaml mounts
# STATE_DIR/generated/prometheus/secrets there, read-only).
_COPY_PREFIX = "remote-write-"


@dataclass(frozen=True)
class RemoteWrite:
    """What the launcher adds to a generated prometheus.yml: nothing when no option asks for it."""

    entries: tuple[dict[str, Any], ...] = ()
    external_labels: dict[str, str] = field(default_factory=dict)

    def apply(self, config: dict[str, Any]) -> dict[str, Any]:
        if self.external_labels:
            config.setdefault("global", {})["external_labels"] = dict(self.external_labels)
        if self.entries:
            config["remote_write"] = copy.deepcopy(list(self.entries))
        return config


NONE = RemoteWrite()


def host_label() -> str:
    """The host's name as the exporter labels its GPUs (`hostname`): NODE_NAME in Kubernetes, else the
    host name. One source, so a central store can join the two."""
    return default_hostname()


def instance_relabelling(host: str) -> dict[str, Any]:
    return {
        "source_labels": ["instance"],
        "regex": _LOOPBACK_INSTANCE,
        "target_label": "instance",
        "replacement": host.replace("$", "$$") + ":$1",
    }


def plan_remote_write(settings: Settings) -> RemoteWrite:
    """The section for this run; a bad URL, file or entry is a UsageError (exit 2), before anything starts."""
    wanted = bool(settings.remote_write) or settings.remote_write_config is not None
    if not wanted and settings.cluster is None:
        return NONE
    host = host_label()
    labels = {"host": host, **({"cluster": settings.cluster} if settings.cluster else {})}
    entries: list[dict[str, Any]] = [{"url": url} for url in settings.remote_write]
    if settings.remote_write_config is not None:
        entries += load_entries(settings.remote_write_config)
    for entry in entries:
        own = entry.get("write_relabel_configs")
        if own is None or isinstance(own, list):  # anything else: Prometheus' own check names it
            entry["write_relabel_configs"] = [instance_relabelling(host), *(own or [])]
    return RemoteWrite(tuple(entries), labels)


def load_entries(path: Path) -> list[dict[str, Any]]:
    what = f"--remote-write-config {path}"
    try:
        document = load_plain_yaml(read_bounded(path))
    except OSError as error:
        raise UsageError(f"{what}: cannot read it: {error.strerror or error}") from None
    except PlainYamlError as error:
        where = f" at {error.where}" if error.where else ""
        raise UsageError(f"{what}{' is not valid YAML' if error.invalid else ''}{where}: {error.problem}") from None
    if isinstance(document, dict):
        if set(document) != {"remote_write"}:
            raise UsageError(f"{what}: expected a list of remote_write entries, or a mapping with remote_write only")
        document = document["remote_write"]
    if not isinstance(document, list) or not document:
        # Not echoed: a file named here by mistake (a password file) would be shown in the error.
        got = "an empty list" if document == [] else f"a {type(document).__name__}"
        raise UsageError(f"{what}: expected a non-empty list of remote_write entries, got {got}")
    entries = []
    for number, entry in enumerate(document, 1):
        where = f"{what}: entry {number}"
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise UsageError(f"{where}: expected a mapping with a url")
        entries.append(_checked_entry(entry, where, path.parent))
    return entries


def _checked_entry(entry: dict[str, Any], where: str, base: Path) -> dict[str, Any]:
    entry = copy.deepcopy(entry)
    for key in ("url", "proxy_url"):
        if key in entry:
            try:
                remote_write_url(entry[key])
            except ValueError as error:
                raise UsageError(f"{where}: {key}: {error}") from None
    for (section, key), file_key in INLINE_SECRETS.items():
        holder = entry if section is None else entry.get(section)
        if isinstance(holder, dict) and key in holder:
            name = key if section is None else f"{section}.{key}"
            instead = (
                f"put it in a file and give {name.removesuffix(key)}{file_key}"
                if file_key
                else "Prometheus has no file form for it: use sigv4.profile or the host's IAM role"
            )
            raise UsageError(f"{where}: {name} is a secret written inline; {instead}")
    headers = entry.get("headers")
    if isinstance(headers, dict):
        for header in headers:
            if any(word in str(header).lower() for word in _SECRET_HEADER_WORDS):
                raise UsageError(
                    f"{where}: header {shown(header)} looks like a credential written inline; use"
                    " authorization.credentials_file or basic_auth.password_file"
                )
    for holder, key, dotted in _file_keys(entry):
        value = holder[key]
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"{where}: {dotted}: expected a path, got {shown(value)}")
        file = Path(value).expanduser()
        file = file if file.is_absolute() else base / file  # as Prometheus reads it: beside the config file
        _check_readable(file, f"{where}: {dotted} {file}")
        holder[key] = str(file.resolve())
    return entry


def _file_keys(node: Any, trail: str = "") -> Iterator[tuple[dict[str, Any], str, str]]:
    """(the mapping, its key, the dotted path to it) of every *_file key, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            dotted = f"{trail}{key}"
            if isinstance(key, str) and key.endswith("_file"):
                yield node, key, dotted
            else:
                yield from _file_keys(value, dotted + ".")
    elif isinstance(node, list):
        for item in node:
            yield from _file_keys(item, trail)


def _check_readable(path: Path, what: str) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise UsageError(f"{what}: cannot read it: {error.strerror or error}") from None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise UsageError(f"{what}: not a regular file")
    finally:
        os.close(descriptor)


def for_container(remote: RemoteWrite, secrets: Path, container_secrets: Path) -> RemoteWrite:
    """The same section for compose's Prometheus, which runs as its own user and sees only its mounts: each
    credential file copied into `secrets` (mounted read-only at `container_secrets`), its path rewritten.
    Copies of an earlier run are removed first, so a credential no longer named does not linger."""
    _remove_copies(secrets)
    entries = [copy.deepcopy(entry) for entry in remote.entries]
    for number, entry in enumerate(entries, 1):
        for holder, key, dotted in _file_keys(entry):
            name = f"{_COPY_PREFIX}{number}-{dotted}"
            try:
                text = Path(holder[key]).read_text()
            except (OSError, UnicodeDecodeError) as error:
                raise UsageError(f"remote_write entry {number}: {dotted}: cannot copy it: {error}") from None
            write_for_container(secrets / name, text)
            holder[key] = str(container_secrets / name)
    return RemoteWrite(tuple(entries), dict(remote.external_labels))


def _remove_copies(secrets: Path) -> None:
    try:
        with open_directory(secrets, create_mode=None) as directory:
            for name in os.listdir(directory):
                if name.startswith(_COPY_PREFIX):
                    os.unlink(name, dir_fd=directory)
    except FileNotFoundError:
        return
