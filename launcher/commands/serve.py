"""The main job: check everything, then supervise vLLM (and, later, its monitoring) until stopped."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from types import FrameType

from launcher import defaults
from launcher.addresses import host_port, is_exposed
from launcher.commands.vllm_evidence import evidence_sources, gpu_health, recorder, redacted_command
from launcher.errors import EXIT_NEEDS_A_PERSON, PreflightError, StopRequested
from launcher.file_writes import ensure_directory, remove_tree
from launcher.preflight import check_model, check_port_free, check_state_dir
from launcher.settings.command_line import CommandLine
from launcher.settings.settings import Settings, load_settings
from launcher.stack.exporter_child import exporter_address, exporter_child, exporter_url
from launcher.stack.http_child import HttpChild
from launcher.stack.plan import StackPlan, plan_stack
from launcher.stack.prometheus_child import targets_dir
from launcher.stack.prometheus_targets import (
    advertised,
    fleet_target_groups,
    is_loopback,
    write_fleet_targets,
    write_local_targets,
)
from launcher.stack.secured_endpoint import StackAccess, exporter_exposure_warning, secure_endpoint
from launcher.state_layout import StateLayout, shared_cache_dir
from launcher.supervision.child_spec import ChildSpec, Timing
from launcher.supervision.orphan_guard import OrphanGuard
from launcher.supervision.probe_runner import ProbeRunner
from launcher.supervision.restart_policy import RestartPolicy
from launcher.supervision.sd_notify import SystemdNotifier
from launcher.supervision.supervised_child import SupervisedChild
from launcher.supervision.supervisor import Supervisor
from launcher.vllm_server.capabilities import VllmCapabilities, learn_capabilities
from launcher.vllm_server.child import VllmChild
from launcher.vllm_server.command import VllmInvocation, plan_vllm, vllm_environment
from launcher.vllm_server.executable import find_vllm
from launcher.vllm_server.target import VllmTarget, check_target
from launcher.vllm_server.tiny_model import default_model_dir
from launcher.vllm_server.tiny_model_builder import ensure_tiny_model

log = logging.getLogger(__name__)

TERMINATION_LOG = "/dev/termination-log"  # Kubernetes' default terminationMessagePath


def _cache_dir(layout: StateLayout) -> Path:
    shared = shared_cache_dir()
    try:
        shared.mkdir(parents=True, exist_ok=True)
        if os.access(shared, os.W_OK):
            return shared
    except OSError:
        pass
    return layout.cache  # a locked-down service user may have no writable home


def _learn(settings: Settings, layout: StateLayout) -> tuple[Path, VllmCapabilities]:
    executable = find_vllm(settings.vllm_bin)
    scratch = layout.scratch("preflight")
    ensure_directory(scratch / "tmp")
    env = vllm_environment(os.environ, layout, settings, scratch, None)
    try:
        capabilities = learn_capabilities(executable, _cache_dir(layout), env)
    finally:
        remove_tree(scratch)
    return executable, capabilities


def prepare(settings: Settings) -> VllmInvocation:
    """Every pre-flight step. Raises LauncherError; starts nothing that outlives it."""
    check_state_dir(settings.state_dir)
    layout = StateLayout(settings.state_dir)
    layout.ensure()
    executable, capabilities = _learn(settings, layout)
    cache = _cache_dir(layout)
    invocation = plan_vllm(settings, executable, capabilities, layout, default_model_dir(cache))
    if not invocation.uses_tiny_model:
        check_model(invocation.target.model)
    check_target(invocation.target)
    if invocation.uses_tiny_model:
        build_env = dict(invocation.env, TMPDIR=str(cache))
        ensure_tiny_model(default_model_dir(cache), executable, build_env)
    log.info("vLLM %s at %s; model %s", capabilities.version, executable, invocation.target.model_name)
    if not invocation.ipc_dir.is_relative_to(settings.state_dir):
        log.info(
            "the state dir path is too long for unix sockets; vLLM's go to %s (removed at exit)", invocation.ipc_dir
        )
    return invocation


def restart_policy(settings: Settings) -> RestartPolicy:
    """Each supervised child's own: --max-restarts within --restart-window, then it gives up."""
    return RestartPolicy(
        settings.max_restarts, settings.restart_window, defaults.BACKOFF_INITIAL_S, defaults.BACKOFF_MAX_S
    )


def planned_exporter(settings: Settings, layout: StateLayout, access: StackAccess) -> HttpChild | None:
    """The exporter the launcher supervises beside vLLM; none with --no-exporter."""
    return None if settings.no_exporter else exporter_child(settings, layout, access.exporter)


def write_targets(
    settings: Settings, layout: StateLayout, target: VllmTarget, stack: StackPlan, access: StackAccess
) -> None:
    """What the local Prometheus scrapes, and the list a central one reads: the exporter only when it runs."""
    write_local_targets(
        targets_dir(layout),
        vllm=target.probe_address,
        exporter=None if settings.no_exporter else exporter_address(settings),
        prometheus=host_port(defaults.LOOPBACK, settings.prometheus_port) if stack.mode != "none" else None,
        alertmanager=stack.alertmanager,
    )
    _write_fleet_targets(settings, layout, target.host, target.port, access.exporter.scheme)


def check_helper_ports(settings: Settings) -> None:
    if not settings.no_exporter:
        check_port_free(settings.exporter_host, settings.exporter_port, "exporter (--exporter-port)")


def _stop_during_preflight(signum: int, _frame: FrameType | None) -> None:
    # Raising here also ends a running `vllm serve --help=all` or model build: subprocess kills it.
    raise StopRequested(f"received {signal.Signals(signum).name} before vLLM started; nothing to stop")


def serve(command_line: CommandLine) -> int:
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _stop_during_preflight)
    settings = load_settings(command_line)
    invocation = prepare(settings)
    check_helper_ports(settings)
    layout = StateLayout(settings.state_dir)
    access = StackAccess(
        exporter=secure_endpoint("exporter", None if settings.no_exporter else settings.exporter_web_config, layout),
        prometheus=secure_endpoint("prometheus", settings.prometheus_web_config, layout),
    )
    stack = plan_stack(settings, layout, access)
    target = invocation.target
    _warn_about_exposure(settings, target, access)
    write_targets(settings, layout, target, stack, access)
    timing = Timing(
        startup_timeout_s=settings.startup_timeout,
        health_interval_s=settings.health_interval,
        health_failures=settings.health_failures,
    )
    guard = OrphanGuard()
    supervisor = Supervisor(layout.supervisor_state, settings.grace_period, SystemdNotifier(), guard)
    supervisor.install_signal_handlers()
    try:
        guard.start()
    except OSError as error:
        raise PreflightError(f"cannot start the orphan guard: {error}") from None
    try:
        probes = ProbeRunner(on_done=supervisor.wakeups.wake)

        def supervise(spec: ChildSpec, echo_prefix: str = "") -> None:
            supervisor.add(
                SupervisedChild(spec, restart_policy(settings), guard, probes, settings.grace_period, echo_prefix)
            )

        sources = evidence_sources(settings, layout, invocation, access)
        supervise(
            VllmChild(
                invocation,
                timing,
                layout.log_file("vllm"),
                guard,
                settings.stall_timeout,
                canary_interval_s=settings.canary_interval,
                max_stall_restarts=settings.max_stall_restarts,
                recorder=recorder(settings, sources, layout),
                gpu_health=gpu_health(sources),
            )
        )
        urls = {"vllm": target.base_url}
        exporter = planned_exporter(settings, layout, access)
        if exporter is not None:
            supervise(exporter, "[exporter] ")
            urls["exporter"] = exporter_url(settings, access.exporter) + "/metrics"
        for spec in stack.children:
            supervise(spec, f"[{spec.name}] ")
        supervisor.on_shutdown.extend(stack.on_shutdown)
        for name, lines in stack.announcements.items():
            supervisor.on_child_ready.setdefault(name, []).append(lambda lines=lines: _log_lines(lines))
        supervisor.info.update(
            model_name=target.model_name or "",
            model=target.model or "",
            vllm_bin=invocation.argv[0],
            vllm_version=invocation.vllm_version,
            vllm_command=redacted_command(sources),
            stack=stack.mode,
            **settings.objectives.as_info(),
            # For `top`'s cost per token; repr() gives back the exact number
            **({"gpu_hourly_cost": repr(settings.gpu_hourly_cost)} if settings.gpu_hourly_cost is not None else {}),
            **{f"{name}_url": url for name, url in {**urls, **stack.urls}.items()},
        )
        supervisor.on_ready.append(lambda: _announce(target.model_name, urls))
        code = supervisor.run()
        if code == EXIT_NEEDS_A_PERSON and supervisor.outcome is not None:
            _leave_termination_message(supervisor.outcome.message)
        return code
    finally:
        guard.close()


def _leave_termination_message(message: str) -> None:
    """Kubernetes shows this file's text as the reason a container ended (kubectl describe pod): the pod fails
    visibly, saying what a person must do. Elsewhere the file does not exist and nothing is written."""
    path = Path(os.environ.get("SWM_TERMINATION_LOG", TERMINATION_LOG))
    try:  # never created, and never through a link: a root launcher must not write where one points
        descriptor = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        log.debug("cannot write %s: %s", path, error)
        return
    with os.fdopen(descriptor, "w") as handle:
        try:
            handle.write(message[:4000] + "\n")
        except OSError as error:
            log.debug("cannot write %s: %s", path, error)


def _warn_about_exposure(settings: Settings, target: VllmTarget, access: StackAccess) -> None:
    """Binding beyond loopback is the user's choice; what it exposes is said once, at start-up."""
    if is_exposed(target.host):
        unguarded = "" if target.api_key else "; with no API key (--api-key-file), so does the model API (/v1)"
        log.warning(
            "vLLM listens on %s: its /metrics and /health answer anyone who can reach it, even with an API "
            "key (vLLM checks the key on /v1 only)%s",
            host_port(target.host, target.port),
            unguarded,
        )
    if not settings.no_exporter and is_exposed(settings.exporter_host) and access.exporter.web_config_file is None:
        log.warning("%s", exporter_exposure_warning(settings.exporter_host, settings.exporter_port))


def _announce(model_name: str | None, urls: dict[str, str]) -> None:
    log.info("ready: vLLM serves %s", model_name)
    for name, url in urls.items():
        log.info("  %-13s %s", name, url)


def _write_fleet_targets(
    settings: Settings, layout: StateLayout, vllm_host: str, vllm_port: int, exporter_scheme: str
) -> None:
    vllm = advertised(vllm_host, vllm_port, settings.advertise_address)
    exporter = (
        None
        if settings.no_exporter
        else advertised(settings.exporter_host, settings.exporter_port, settings.advertise_address)
    )
    write_fleet_targets(layout.fleet_targets, fleet_target_groups(vllm, exporter, exporter_scheme))
    if is_loopback(vllm):
        log.debug(
            "fleet target list %s advertises %s: a central Prometheus needs --host (and --exporter-host) "
            "bound beyond loopback, and perhaps --advertise-address",
            layout.fleet_targets,
            vllm,
        )


def _log_lines(lines: list[str]) -> None:
    for line in lines:
        log.info("%s", line)
