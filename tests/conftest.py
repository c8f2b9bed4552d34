import logging
import os
from pathlib import Path

import pytest

from tests.support.launcher_process import LauncherProcess
from tests.support.notify_listener import NotifyListener
from tests.support.prometheus_api import PrometheusApi, ready_prometheus
from tests.support.webhook_receiver import WebhookReceiver

REPO = Path(__file__).resolve().parent.parent
# Short, so that a frozen engine is caught within a test; long against a step of the tiny model (ms).
SHARED_STALL_TIMEOUT_S = 8
SHARED_OBJECTIVE_OPTIONS = ("--slo-ttft-threshold", "5", "--slo-itl-target", "0.95")
# Idle moments between tests are long enough for canaries, so their series have data for the dashboards.
SHARED_CANARY_INTERVAL_S = 10


# The fast tests of the core decisions (exit codes, the stall judgement, the helpers' environment, the password
# check, the generated command lines and configurations) run first, so that a one-line bug in one of them fails
# within the suite's first minute (docs/testing.md, Planted bugs).
CORE_DECISIONS = (
    "test_exit_codes.py",
    "test_restart_policy.py",
    "test_helper_failure_isolation.py",
    "test_vllm_progress.py",
    "test_canary_and_escalation.py",
    "test_lingering_front_end.py",
    "test_helper_environment.py",
    "test_helper_subprocess_environment.py",
    "test_exporter_access_checks.py",
    "test_exporter_client_certificates.py",
    "test_web_config.py",
    "test_vllm_target_and_command.py",
    "test_secret_options.py",
    "test_exporter_collectors.py",
    "test_stack_modes.py",
    "test_remote_write.py",
    "test_compose_resolution.py",
    "test_slo_bucket_labels.py",
    "test_compose_file.py",
    "test_systemd_unit.py",
    "test_container_and_kubernetes.py",
)


def pytest_collection_modifyitems(config, items):
    """By markers, not by where a test lives: tests that need no vLLM first (the core decisions' before the
    rest), then those that start their own vLLM (own_server), and the ones that share one only after them.

    Two vLLM servers at once on 2 cores would slow both and make start-up timeouts flaky.
    """

    def rank(item):
        if not item.get_closest_marker("vllm"):
            if item.path.name in CORE_DECISIONS:
                return -len(CORE_DECISIONS) + CORE_DECISIONS.index(item.path.name)
            return 0
        if item.get_closest_marker("own_server"):
            return 1
        return 2

    items.sort(key=rank)


ILLEGAL_TRANSITION = "illegal state transition"


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if ILLEGAL_TRANSITION in record.getMessage():
            self.records.append(record)


@pytest.fixture(autouse=True)
def illegal_transitions():
    """Fails any test during which a child took an illegal state transition (launcher/states.py): the
    supervisor only logs those, so that a production launcher keeps supervising. A test that provokes one
    on purpose requests this fixture and clears the list once it has checked it."""
    collector = _Collector()
    logger = logging.getLogger("launcher.supervision.supervised_child")
    logger.addHandler(collector)
    try:
        yield collector.records
    finally:
        logger.removeHandler(collector)
    if collector.records:
        pytest.fail("\n".join(record.getMessage() for record in collector.records), pytrace=False)


@pytest.fixture(scope="session")
def cache_home(tmp_path_factory) -> Path:
    """XDG_CACHE_HOME for every launcher in the session: the tiny model and vLLM's options, learned once.

    SWM_TEST_CACHE_HOME reuses one across sessions while developing.
    """
    reused = os.environ.get("SWM_TEST_CACHE_HOME")
    if reused:
        Path(reused).mkdir(parents=True, exist_ok=True)
        return Path(reused)
    return tmp_path_factory.mktemp("cache-home")


@pytest.fixture(scope="session")
def shared_notify():
    listener = NotifyListener()
    yield listener
    listener.close()


@pytest.fixture(scope="session")
def shared_webhook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory, cache_home, shared_notify, shared_webhook):
    """One supervised vLLM for every test that only reads from it, started with the seed's flags, with a
    native Prometheus and Alertmanager beside it, a NOTIFY_SOCKET (systemd's part) and a webhook receiver
    (a pager's) the tests own, a short stall timeout, a rules override with fast alerts and objectives of its
    own (SHARED_OBJECTIVE_OPTIONS)."""
    workdir = tmp_path_factory.mktemp("shared-server")
    launcher = LauncherProcess(
        [
            "--max-model-len",
            "2048",
            "--disable-log-requests",
            "--stack",
            "native",
            "--stall-timeout",
            str(SHARED_STALL_TIMEOUT_S),
            "--alert-webhook",
            shared_webhook.url("/alerts"),
            "--heartbeat-url",
            shared_webhook.url("/heartbeat"),
            "--extra-rules",
            str(REPO / "tests" / "fixtures" / "fast_alerts.yml"),
            # Objectives other than the defaults, so that tests see them reach rules, dashboards and top.
            *SHARED_OBJECTIVE_OPTIONS,
            "--canary-interval",
            str(SHARED_CANARY_INTERVAL_S),
            # So that the cost records and panels exist (the stand-in GPU's energy gives them data).
            "--gpu-hourly-cost",
            "2.5",
        ],
        workdir,
        cache_home,
        extra_env={"NOTIFY_SOCKET": shared_notify.path, "WATCHDOG_USEC": "2000000"},
    )
    launcher.start()
    launcher.wait_healthy()
    yield launcher
    launcher.stop()


@pytest.fixture
def server(shared_server):
    """The shared server, healthy (a test before may have restarted it)."""
    shared_server.wait_healthy()
    return shared_server


@pytest.fixture(scope="module")
def prometheus(shared_server) -> PrometheusApi:
    """The shared server's Prometheus, once ready."""
    return ready_prometheus(shared_server.prometheus_url)
