"""The one place that turns settings into the `vllm serve` command line and environment."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from launcher import defaults
from launcher.errors import UsageError
from launcher.file_writes import write_private
from launcher.settings.options import OPTIONS
from launcher.settings.secret_options import (
    API_KEY,
    MOVED_FROM_ARGV,
    SECRET_OPTIONS,
    SecretOption,
    check_secret,
    read_secret_file,
    split_secrets,
)
from launcher.settings.settings import Settings
from launcher.state_layout import StateLayout
from launcher.vllm_server.capabilities import VllmCapabilities
from launcher.vllm_server.flags import check_known_flags, translate_args, translate_config
from launcher.vllm_server.target import VllmTarget, model_first, read_target, remove_option, scan_vllm_args
from launcher.vllm_server.tiny_model import TINY_MODEL_NAME

_NO_PHONE_HOME = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
# A unix socket path holds at most 107 bytes; vLLM appends "/<uuid4>" (37) to its IPC dir.
_MAX_IPC_DIR_CHARS = 64


@dataclass(frozen=True)
class VllmInvocation:
    argv: tuple[str, ...]
    env: dict[str, str]
    target: VllmTarget
    scratch: Path  # wiped before each start
    ipc_dir: Path  # vLLM's unix sockets: inside scratch unless that path is too long for a socket
    multiproc_dir: Path | None  # PROMETHEUS_MULTIPROC_DIR, wiped before each start
    uses_tiny_model: bool
    vllm_version: str = ""


def _with_defaults(args: tuple[str, ...], extra: tuple[str, ...], capabilities: VllmCapabilities) -> tuple[str, ...]:
    """Appends each flag of `extra` (with its value) unless the user already gave it."""
    given = scan_vllm_args(args, capabilities).options
    result = list(args)
    index = 0
    while index < len(extra):
        flag = extra[index]
        takes_value = index + 1 < len(extra) and not extra[index + 1].startswith("--")
        chunk = extra[index : index + (2 if takes_value else 1)]
        if flag not in given:
            result.extend(chunk)
        index += len(chunk)
    return tuple(result)


def _quiet_probe_logging(args: tuple[str, ...], capabilities: VllmCapabilities) -> tuple[str, ...]:
    flag = "--disable-access-log-for-endpoints"
    given = scan_vllm_args(args, capabilities).options
    if not capabilities.accepts(flag) or flag in given or "--disable-uvicorn-access-log" in given:
        return args
    return (*args, flag, defaults.QUIET_ENDPOINTS)


def ipc_dir_for(scratch: Path) -> Path:
    inside = scratch / "tmp"
    if len(str(inside)) <= _MAX_IPC_DIR_CHARS:
        return inside
    digest = hashlib.sha256(str(scratch).encode()).hexdigest()[:12]
    name = f"swm-{os.getuid()}-{digest}"
    # $TMPDIR first; if that is long too, /tmp, which always is short.
    for base in (tempfile.gettempdir(), "/tmp"):  # noqa: S108 - a private dir, refused if not ours (child.py)
        if len(str(Path(base) / name)) <= _MAX_IPC_DIR_CHARS:
            return Path(base) / name
    return Path("/tmp") / name  # noqa: S108


def vllm_environment(
    base: Mapping[str, str], layout: StateLayout, settings: Settings, scratch: Path, multiproc_dir: Path | None
) -> dict[str, str]:
    env = dict(base)
    if not settings.allow_usage_stats:
        env.update(_NO_PHONE_HOME)
    # Temp files, IPC sockets and compile caches land in the state dir, never in /tmp or ~.
    tmp = scratch / "tmp"
    env["TMPDIR"] = str(tmp)
    env["VLLM_RPC_BASE_PATH"] = str(ipc_dir_for(scratch))
    env.setdefault("VLLM_CACHE_ROOT", str(layout.cache / "vllm"))
    env.setdefault("VLLM_CONFIG_ROOT", str(layout.cache / "vllm-config"))
    env.setdefault("TORCHINDUCTOR_CACHE_DIR", str(layout.cache / "torchinductor"))
    env.setdefault("TRITON_CACHE_DIR", str(layout.cache / "triton"))
    env["PYTHONUNBUFFERED"] = "1"
    env.pop(MOVED_FROM_ARGV, None)  # the launcher's own note
    if multiproc_dir is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc_dir)
    else:
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # a stale one makes /metrics answer 500
    return env


def _take_secret(
    option: SecretOption,
    args: tuple[str, ...],
    config: dict[str, object],
    capabilities: VllmCapabilities,
    settings: Settings,
    base_env: Mapping[str, str],
) -> tuple[tuple[str, ...], dict[str, object], str | None]:
    """One secret out of vLLM's argv and config file, whichever way it was given: on the command line (the
    launcher re-executes itself with it in its environment, see commands/main.py), in the config file, in
    its file option; else the launcher's environment. Two different values are refused: which one vLLM
    should use is not for the launcher to guess."""
    args, from_args = remove_option(args, option.flag, capabilities, keep_bare=option.bare_allowed)
    config = dict(config)
    values = [check_secret(value, option, option.flag) for value in from_args]
    if option.variable in base_env.get(MOVED_FROM_ARGV, "").split(",") and base_env.get(option.variable):
        values.append(base_env[option.variable])
    for key in option.config_keys:
        value = config.get(key)
        if value is None or (option.bare_allowed and isinstance(value, bool)):
            continue  # `hf-token: true`: the token `hf auth login` stored, nothing secret
        del config[key]
        items = value if isinstance(value, list) else [value]
        values += [check_secret(str(item), option, f"config file: key '{key}'") for item in items]
    file_path = getattr(settings, option.settings_field)
    if file_path is not None:
        values.append(read_secret_file(file_path, option))
    if len(set(values)) > 1:
        raise UsageError(
            f"more than one {option.what} given ({option.flag}, the config file, {option.file_option}): vLLM "
            f"reads one from {option.variable}, which is how the launcher passes it; give one"
        )
    return args, config, values[0] if values else (base_env.get(option.variable) or None)


def plan_vllm(
    settings: Settings,
    executable: Path,
    capabilities: VllmCapabilities,
    layout: StateLayout,
    tiny_model_dir: Path,
    base_env: Mapping[str, str] | None = None,
) -> VllmInvocation:
    split_secrets(list(settings.vllm_args))  # refuses `--api-key -sk-...` before any message could echo it
    args = translate_args(settings.vllm_args, capabilities)
    config = translate_config(settings.vllm_config or {}, capabilities)
    check_known_flags(args, config, capabilities, tuple(option.flag for option in OPTIONS))
    base = os.environ if base_env is None else base_env
    secrets: dict[SecretOption, str | None] = {}
    for option in SECRET_OPTIONS:
        args, config, secrets[option] = _take_secret(option, args, config, capabilities, settings, base)
    api_key = secrets[API_KEY]
    args = model_first(args, capabilities)
    target = read_target(args, config, capabilities)

    uses_tiny_model = target.model is None
    if uses_tiny_model:
        args = (str(tiny_model_dir), *args)
        extra = (*defaults.TINY_MODEL_SERVE_ARGS, "--served-model-name", TINY_MODEL_NAME)
        args = _with_defaults(args, extra, capabilities)
        target = read_target(args, config, capabilities)
    if not target.host_given:
        args = (*args, "--host", defaults.LOOPBACK)
    args = _quiet_probe_logging(args, capabilities)
    if config:
        config_path = layout.generated / "vllm-config.yaml"
        write_private(config_path, yaml.safe_dump(config, sort_keys=False))  # it may hold a secret
        args = (*args, "--config", str(config_path))

    scratch = layout.scratch("vllm")
    multiproc_dir = layout.run / "prometheus-multiproc" if target.api_server_count > 1 else None
    env = vllm_environment(base, layout, settings, scratch, multiproc_dir)
    for option, value in secrets.items():
        if value:
            env[option.variable] = value  # vLLM reads it from here; argv is readable by every local user
    target = replace(target, api_key=api_key)
    if uses_tiny_model:
        env["HF_HUB_OFFLINE"] = "1"
    return VllmInvocation(
        argv=(str(executable), "serve", *args),
        env=env,
        target=target,
        scratch=scratch,
        ipc_dir=ipc_dir_for(scratch),
        multiproc_dir=multiproc_dir,
        uses_tiny_model=uses_tiny_model,
        vllm_version=capabilities.version,
    )
