"""Reads vLLM's own options, only to learn where the server will listen and how to probe it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from launcher import defaults
from launcher.addresses import dial_host, host_port
from launcher.errors import UsageError
from launcher.preflight import check_port_free
from launcher.settings import value_parsers as parse
from launcher.settings.shown_values import shortened
from launcher.vllm_server.capabilities import VllmCapabilities

_ALIASES = {"-asc": "--api-server-count"}


@dataclass(frozen=True)
class ScannedArgs:
    positionals: tuple[str, ...]
    options: dict[str, tuple[str, ...]]  # canonical flag -> values of its last occurrence


@dataclass(frozen=True)
class _Token:
    flag: str | None  # None for a positional
    tokens: tuple[str, ...]  # as written, the flag's values included
    values: tuple[str, ...]


def canonical_flag(flag: str) -> str:
    """vLLM's parser reads --max_model_len as --max-model-len (up to a dot: --compilation-config.some_key)."""
    if not flag.startswith("--"):
        return flag
    name, dot, key = flag.partition(".")
    return name.replace("_", "-") + dot + key


def _walk(args: tuple[str, ...], capabilities: VllmCapabilities) -> list[_Token]:
    """The command line cut into positionals and options with their values, by each option's arity."""
    walked: list[_Token] = []
    index = 0
    while index < len(args):
        token = args[index]
        index += 1
        if not token.startswith("-") or token == "-":
            walked.append(_Token(None, (token,), (token,)))
            continue
        flag, has_value, value = token.partition("=")
        flag = _ALIASES.get(flag, canonical_flag(flag))
        if has_value:
            walked.append(_Token(flag, (token,), (value,)))
            continue
        arity = capabilities.arity.get(flag) or _unlisted_arity(flag, args[index:])
        start = index
        if arity == "1":
            index = min(index + 1, len(args))
        elif arity in ("+", "*", "?"):
            while index < len(args) and not args[index].startswith("-"):
                index += 1
                if arity == "?":
                    break
        walked.append(_Token(flag, (token, *args[start:index]), tuple(args[start:index])))
    return walked


def _unlisted_arity(flag: str, rest: tuple[str, ...]) -> str:
    """A guess for an option --help=all does not list, from what follows it."""
    if flag == "-O":
        return "1" if rest[:1] and rest[0] in ("0", "1", "2", "3") else "0"  # vLLM's -O 3
    if not flag.startswith("--") and len(flag) > 2:
        return "0"  # -O3, -q4: a short option with its value attached
    return "1" if rest and not rest[0].startswith("-") else "0"


def model_first(args: tuple[str, ...], capabilities: VllmCapabilities) -> tuple[str, ...]:
    """vLLM takes its model only as the first argument ("`model` should be provided as the first positional
    argument"); most command lines put it after an option or two. The model moves to the front, every
    option keeps its values and its order."""
    if "--" in args:
        return args  # after it, vLLM reads everything as positional: left as written
    walked = _walk(args, capabilities)
    positionals = [token for token in walked if token.flag is None]
    if len(positionals) != 1 or walked[0] is positionals[0]:
        return args  # none, already first, or several (read_target refuses those)
    rest = [part for token in walked if token is not positionals[0] for part in token.tokens]
    return (positionals[0].values[0], *rest)


def scan_vllm_args(args: tuple[str, ...], capabilities: VllmCapabilities) -> ScannedArgs:
    walked = _walk(args, capabilities)
    positionals = tuple(token.values[0] for token in walked if token.flag is None)
    options = {token.flag: token.values for token in walked if token.flag is not None}  # the last one wins
    return ScannedArgs(positionals, options)


def remove_option(
    args: tuple[str, ...], flag: str, capabilities: VllmCapabilities, keep_bare: bool = False
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The command line without every occurrence of `flag`, and the values they carried. With keep_bare, an
    occurrence without a value (an optional one: `--hf-token` alone) stays."""
    kept: list[str] = []
    values: list[str] = []
    for token in _walk(args, capabilities):
        if token.flag == flag and not (keep_bare and not token.values):
            values.extend(token.values)
        else:
            kept.extend(token.tokens)
    return tuple(kept), tuple(values)


@dataclass(frozen=True)
class VllmTarget:
    model: str | None
    host: str
    host_given: bool
    port: int
    tls: bool
    api_key: str | None
    served_model_name: str | None
    api_server_count: int
    uds: str | None

    @property
    def probe_address(self) -> str:
        """host:port where the launcher, and the local Prometheus, reach vLLM."""
        return host_port(dial_host(self.host), self.port)

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.probe_address}"

    @property
    def model_name(self) -> str | None:
        """The model_name label vLLM puts on its metrics."""
        return self.served_model_name or self.model


def _config_value(config: dict[str, Any], key: str) -> Any:
    for spelling in (key, key.replace("-", "_")):
        if spelling in config:
            return config[spelling]
    return None


def _first(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        return str(value[0]) if value else None
    return None if value is None else str(value)


def read_target(args: tuple[str, ...], config: dict[str, Any] | None, capabilities: VllmCapabilities) -> VllmTarget:
    scanned = scan_vllm_args(args, capabilities)
    config = config or {}

    def value(flag: str, *aliases: str) -> str | None:
        for spelling in (flag, *aliases):
            if spelling in scanned.options:
                return _first(list(scanned.options[spelling]))
        return _first(_config_value(config, flag.removeprefix("--")))

    def switched_on(flag: str, *aliases: str) -> bool:
        if any(spelling in scanned.options for spelling in (flag, *aliases)):
            return True
        return _config_value(config, flag.removeprefix("--")) in (True, "true", "True")

    model = scanned.positionals[0] if scanned.positionals else value("--model")
    if len(scanned.positionals) > 1:
        raise UsageError(f"more than one model given: {shortened(' '.join(scanned.positionals))}")
    host = value("--host")
    port_text = value("--port")
    try:
        port = parse.port(port_text) if port_text is not None else defaults.VLLM_PORT
    except ValueError as error:
        raise UsageError(f"--port: {error}") from None
    api_server_count = _api_server_count(value, switched_on)
    return VllmTarget(
        model=model,
        host=host if host is not None else defaults.LOOPBACK,
        host_given=host is not None,
        port=port,
        tls=value("--ssl-certfile") is not None,
        api_key=value("--api-key"),
        served_model_name=value("--served-model-name"),
        api_server_count=api_server_count,
        uds=value("--uds"),
    )


def _api_server_count(value: Callable[..., str | None], switched_on: Callable[..., bool]) -> int:
    """How many API servers vLLM will run, as `vllm serve` decides when --api-server-count is not given: one
    per data-parallel rank behind its internal load balancer, so that `-dp 2` alone means two API servers
    sharing /metrics through a multiprocess directory, which the launcher must then provide."""

    def count(flag: str, *aliases: str) -> int | None:
        text = value(flag, *aliases)
        try:
            return parse.positive_count(text) if text is not None else None
        except ValueError as error:
            raise UsageError(f"{flag}: {error}") from None

    given = count("--api-server-count", "-asc")
    if given is not None:
        return given
    if switched_on("--data-parallel-external-lb", "-dpe") or value("--data-parallel-rank", "-dpn") is not None:
        return 1  # an external load balancer in front of one vLLM per rank
    if switched_on("--data-parallel-hybrid-lb", "-dph") or value("--data-parallel-start-rank", "-dpr") is not None:
        return count("--data-parallel-size-local", "-dpl") or 1
    return count("--data-parallel-size", "-dp") or 1


def check_target(target: VllmTarget) -> None:
    """Before anything starts: the launcher and Prometheus can reach what vLLM will listen on, and it is free."""
    # These names reach the target lists, the status file and the exporter's labels.
    for flag, value in (
        ("model", target.model),
        ("--served-model-name", target.served_model_name),
        ("--host", target.host),
    ):
        try:
            parse.without_control_characters(value or "", "a name")
        except ValueError as error:
            raise UsageError(f"{flag}: {error}") from None
    if target.uds:
        raise UsageError("--uds is not supported: Prometheus cannot scrape vLLM's /metrics over a unix socket")
    check_port_free(target.host, target.port, "vLLM (--port)")
