"""--remote-write URL, --remote-write-config FILE and --cluster NAME: parsed from argv and --config, refused in one
line when bad, and written into the local Prometheus' configuration (native and compose) that the real promtool
accepts, with no credential in an argv, a log line or a world-readable file."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from launcher.errors import UsageError
from launcher.settings.command_line import parse_command_line
from launcher.settings.config_file import load_config_file
from launcher.settings.settings import merge_settings
from launcher.stack.docker import CONTAINER_SECRETS, write_compose_prometheus_config
from launcher.stack.plan import plan_stack
from launcher.stack.prometheus_child import prometheus_child, write_native_config
from launcher.stack.prometheus_config_check import check_prometheus_config
from launcher.stack.remote_write import host_label, plan_remote_write
from launcher.stack.secured_endpoint import OPEN
from launcher.state_layout import StateLayout
from observability.exporter.labels import default_hostname
from tests.support.launcher_process import REPO_ROOT, free_port

PROMTOOL = Path(sys.executable).parent / "promtool"
SECRET = "s3cr3t-never-shown"
CENTRAL = "https://central.example/api/v1/write"


def settings_for(tmp_path, *extra, config=None):
    argv = [
        "--state-dir",
        str(tmp_path / "state"),
        "--prometheus-port",
        str(free_port()),
        "--grafana-port",
        str(free_port()),
        "--alertmanager-port",
        str(free_port()),
        *extra,
    ]
    settings = merge_settings(parse_command_line(argv), load_config_file(config) if config else None)
    StateLayout(settings.state_dir).ensure()
    return settings


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def password_file(tmp_path):
    path = write(tmp_path / "central-password", SECRET + "\n")
    path.chmod(0o600)
    return path


# -- the options ------------------------------------------------------------------------------------------------


def test_the_options_parse_from_argv_and_repeat():
    line = parse_command_line(
        ["--remote-write", CENTRAL, "--remote-write=http://10.0.0.5:9090/api/v1/write", "--cluster", "eu-west-1", "m"]
    )
    assert line.launcher["remote_write"] == (CENTRAL, "http://10.0.0.5:9090/api/v1/write")
    assert line.launcher["cluster"] == "eu-west-1"
    assert line.vllm_args == ("m",)


def test_the_options_parse_from_the_config_file_and_the_command_line_wins(tmp_path):
    rules = write(tmp_path / "rw.yml", f"- url: {CENTRAL}\n")
    config = write(
        tmp_path / "config.yml",
        f"remote-write: [{CENTRAL}, 'http://b.example/w']\nremote_write_config: {rules}\ncluster: prod\n",
    )
    settings = settings_for(tmp_path, config=config)
    assert settings.remote_write == (CENTRAL, "http://b.example/w")
    assert settings.remote_write_config == rules
    assert settings.cluster == "prod"
    assert settings_for(tmp_path, "--cluster", "staging", config=config).cluster == "staging"
    single = write(tmp_path / "single.yml", f"remote-write: {CENTRAL}\n")
    assert settings_for(tmp_path, config=single).remote_write == (CENTRAL,)


def test_without_the_options_nothing_changes(tmp_path):
    settings = settings_for(tmp_path)
    assert (settings.remote_write, settings.remote_write_config, settings.cluster) == ((), None, None)
    config = yaml.safe_load(write_native_config(settings, StateLayout(settings.state_dir)).read_text())
    assert "remote_write" not in config and "external_labels" not in config["global"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--remote-write", "ftp://central.example/w"], "expected an http:// or https:// URL"),
        (["--remote-write", f"https://user:{SECRET}@central.example/w"], "without user:password@"),
        (["--remote-write", f"https://central.example/w?api_key={SECRET}"], "query parameter 'api_key' looks like"),
        (["--remote-write", "https://central.example/w\nx"], "without control characters"),
        (["--cluster", "two words"], "expected a name of letters"),
        (["--cluster", ""], "expected a name of letters"),
        (["--remote-write"], "--remote-write needs a value"),
    ],
)
def test_a_bad_value_on_the_command_line_is_one_line_without_the_secret(argv, message):
    with pytest.raises(UsageError) as caught:
        parse_command_line(argv)
    text = str(caught.value)
    assert message in text and "\n" not in text and SECRET not in text


def test_a_bad_value_in_the_config_file_names_its_key(tmp_path):
    config = write(tmp_path / "config.yml", f"remote-write: ['https://u:{SECRET}@c.example/w']\n")
    with pytest.raises(UsageError, match=r"key 'remote-write': expected a URL without user:password@") as caught:
        load_config_file(config)
    assert SECRET not in str(caught.value)


def test_the_launcher_exits_2_with_one_line_and_no_secret(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "launcher", "--state-dir", str(tmp_path), "--remote-write", f"https://u:{SECRET}@c/w"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert not (tmp_path / "generated").exists()  # nothing written, nothing started


# -- --remote-write-config ------------------------------------------------------------------------------------


def remote_config(tmp_path, text):
    return settings_for(tmp_path, "--remote-write-config", str(write(tmp_path / "remote-write.yml", text)))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]\n", "expected a non-empty list of remote_write entries, got an empty list"),
        (f"{SECRET}\n", "expected a non-empty list of remote_write entries, got a str"),  # a password file by mistake
        ("url: x\n", "expected a list of remote_write entries, or a mapping with remote_write only"),
        ("remote_write: [{url: 'https://c/w'}]\nglobal: {}\n", "a mapping with remote_write only"),
        ("- name: no-url\n", "entry 1: expected a mapping with a url"),
        ("- https://c/w\n", "entry 1: expected a mapping with a url"),
        ("- url: 'ftp://c/w'\n", "entry 1: url: expected an http:// or https:// URL"),
        (f"- url: 'https://u:{SECRET}@c/w'\n", "entry 1: url: expected a URL without user:password@"),
        (
            f"- url: https://c/w\n  proxy_url: 'http://u:{SECRET}@proxy:3128'\n",
            "entry 1: proxy_url: expected a URL without user:password@",
        ),
        (
            f"- url: https://c/w\n- url: https://d/w\n  basic_auth: {{username: a, password: {SECRET}}}\n",
            "entry 2: basic_auth.password is a secret written inline; put it in a file and give"
            " basic_auth.password_file",
        ),
        (
            f"- url: https://c/w\n  authorization: {{credentials: {SECRET}}}\n",
            "authorization.credentials is a secret written inline; put it in a file and give"
            " authorization.credentials_file",
        ),
        (f"- url: https://c/w\n  bearer_token: {SECRET}\n", "give bearer_token_file"),
        (
            f"- url: https://c/w\n  oauth2: {{client_id: a, client_secret: {SECRET}, token_url: 'https://t/'}}\n",
            "give oauth2.client_secret_file",
        ),
        (
            f"- url: https://c/w\n  sigv4: {{region: eu-west-1, access_key: AK, secret_key: {SECRET}}}\n",
            "sigv4.secret_key is a secret written inline; Prometheus has no file form for it",
        ),
        (f"- url: https://c/w\n  headers: {{X-API-Key: {SECRET}}}\n", "header 'X-API-Key' looks like a credential"),
        (
            "- url: https://c/w\n  basic_auth: {username: a, password_file: /nonexistent/password}\n",
            "entry 1: basic_auth.password_file /nonexistent/password: cannot read it: No such file or directory",
        ),
        ("- url: https://c/w\n  tls_config: {ca_file: .}\n", "tls_config.ca_file"),
        ("- url: https://c/w\n  tls_config: {ca_file: 3}\n", "tls_config.ca_file: expected a path"),
        ("- url: https://c/w\n  a: &x 1\n  b: *x\n", "anchors and aliases"),
        ("- url: [unclosed\n", "is not valid YAML"),
    ],
)
def test_a_bad_remote_write_config_is_one_line_before_anything_starts(tmp_path, text, message):
    settings = remote_config(tmp_path, text)
    with pytest.raises(UsageError) as caught:
        plan_stack(settings, StateLayout(settings.state_dir))
    shown = str(caught.value)
    assert message in shown, shown
    assert shown.startswith(f"--remote-write-config {settings.remote_write_config}")
    assert "\n" not in shown and SECRET not in shown
    assert caught.value.exit_code == 2
    assert not (settings.state_dir / "generated" / "prometheus" / "prometheus.yml").exists()


def test_a_missing_remote_write_config_is_one_line(tmp_path):
    settings = settings_for(tmp_path, "--remote-write-config", str(tmp_path / "absent.yml"))
    with pytest.raises(UsageError, match=r"absent\.yml: cannot read it: No such file or directory$"):
        plan_remote_write(settings)


def test_what_only_prometheus_knows_is_judged_by_promtool_before_anything_starts(tmp_path):
    settings = remote_config(tmp_path, "- url: https://c/w\n  queue_config: {max_shardz: 4}\n")
    with pytest.raises(UsageError) as caught:
        plan_stack(settings, StateLayout(settings.state_dir))  # --stack auto: native here, with the real promtool
    assert "Prometheus refuses the generated prometheus.yml (promtool check config)" in str(caught.value)
    assert "max_shardz" in str(caught.value) and "\n" not in str(caught.value)


def test_remote_write_needs_the_local_prometheus(tmp_path):
    with pytest.raises(UsageError, match=r"^--remote-write needs the local Prometheus, but the stack is none"):
        plan_stack(settings_for(tmp_path, "--stack", "none", "--remote-write", CENTRAL), StateLayout(tmp_path))
    plan_stack(settings_for(tmp_path, "--stack", "none", "--cluster", "eu"), StateLayout(tmp_path))  # harmless


# -- the generated configuration --------------------------------------------------------------------------------


def test_native_config_has_remote_write_external_labels_and_passes_promtool(tmp_path, password_file):
    ca = write(tmp_path / "ca.pem", "not checked by --syntax-only\n")
    settings = remote_config(
        tmp_path,
        "remote_write:\n"
        f"  - url: https://mimir.example/api/v1/push\n"
        "    name: mimir\n"
        f"    basic_auth: {{username: host-1, password_file: {password_file.name}}}\n"  # beside the file, as Prometheus
        f"    tls_config: {{ca_file: {ca}}}\n"
        "    headers: {X-Scope-OrgID: gpu-fleet}\n"
        "    queue_config: {max_shards: 4}\n"
        "    write_relabel_configs: [{source_labels: [__name__], regex: 'go_.*', action: drop}]\n",
    )
    settings = merge_settings(
        parse_command_line(
            [
                "--state-dir",
                str(settings.state_dir),
                "--remote-write",
                CENTRAL,
                "--remote-write-config",
                str(settings.remote_write_config),
                "--cluster",
                "eu-west-1",
            ]
        )
    )
    layout = StateLayout(settings.state_dir)
    path = write_native_config(settings, layout)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert SECRET not in text
    config = yaml.safe_load(text)
    assert config["global"]["external_labels"] == {"host": default_hostname(), "cluster": "eu-west-1"}
    first, second = config["remote_write"]
    relabel = {
        "source_labels": ["instance"],
        "regex": r"(?:127\.0\.0\.1|localhost|\[::1\]):([0-9]+)",
        "target_label": "instance",
        "replacement": f"{default_hostname()}:$1",
    }
    assert first == {"url": CENTRAL, "write_relabel_configs": [relabel]}
    assert second["basic_auth"] == {"username": "host-1", "password_file": str(password_file.resolve())}
    assert second["tls_config"] == {"ca_file": str(ca.resolve())}
    assert second["write_relabel_configs"] == [
        relabel,
        {"source_labels": ["__name__"], "regex": "go_.*", "action": "drop"},
    ]
    assert (second["name"], second["headers"], second["queue_config"]) == (
        "mimir",
        {"X-Scope-OrgID": "gpu-fleet"},
        {"max_shards": 4},
    )
    result = subprocess.run([str(PROMTOOL), "check", "config", "--syntax-only", str(path)], capture_output=True)
    assert result.returncode == 0, result.stderr
    check_prometheus_config(path, "--remote-write")  # the launcher's own call agrees


def test_the_host_label_is_the_exporters_hostname(monkeypatch):
    monkeypatch.setenv("NODE_NAME", "gpu-node-7")
    assert host_label() == default_hostname() == "gpu-node-7"


def test_the_prometheus_command_is_unchanged_and_holds_no_url(tmp_path, password_file):
    plain = settings_for(tmp_path)
    remote = remote_config(
        tmp_path, f"- url: {CENTRAL}\n  basic_auth: {{username: a, password_file: {password_file}}}\n"
    )
    layout = StateLayout(plain.state_dir)
    binary = Path("/usr/bin/prometheus")
    without = prometheus_child(plain, layout, binary, OPEN)
    with_remote = prometheus_child(remote, layout, binary, OPEN)
    ports = {f"127.0.0.1:{plain.prometheus_port}": "PORT", f"127.0.0.1:{remote.prometheus_port}": "PORT"}

    def normalized(command):
        return [ports.get(arg.split("=", 1)[-1], arg) if "listen" in arg else arg for arg in command]

    assert normalized(with_remote.command) == normalized(without.command)
    assert not any("central" in arg or SECRET in arg for arg in with_remote.command)
    with_remote.prepare()  # what a restart of Prometheus writes: the planned section, not a fresh read
    config = yaml.safe_load((layout.generated / "prometheus" / "prometheus.yml").read_text())
    assert config["remote_write"][0]["url"] == CENTRAL


def test_a_restart_reuses_the_checked_section_even_if_the_file_turned_bad(tmp_path, password_file):
    settings = remote_config(tmp_path, f"- url: {CENTRAL}\n")
    layout = StateLayout(settings.state_dir)
    child = prometheus_child(settings, layout, Path("/usr/bin/prometheus"), OPEN)
    settings.remote_write_config.write_text(f"- url: {CENTRAL}\n  bearer_token: {SECRET}\n")
    child.prepare()  # no UsageError in the middle of supervision
    assert SECRET not in (layout.generated / "prometheus" / "prometheus.yml").read_text()


def test_native_plan_checks_and_writes_the_section(tmp_path, password_file):
    settings = settings_for(tmp_path, "--stack", "native", "--remote-write", CENTRAL, "--cluster", "eu")
    plan = plan_stack(settings, StateLayout(settings.state_dir))
    config = yaml.safe_load((settings.state_dir / "generated" / "prometheus" / "prometheus.yml").read_text())
    assert config["remote_write"][0]["url"] == CENTRAL
    assert config["global"]["external_labels"]["cluster"] == "eu"
    assert plan.children[0].name == "prometheus"


# -- compose ---------------------------------------------------------------------------------------------------


def test_compose_gets_the_same_section_with_credential_copies_it_can_read(tmp_path, password_file):
    settings = remote_config(
        tmp_path, f"- url: {CENTRAL}\n  basic_auth: {{username: a, password_file: {password_file}}}\n"
    )
    settings = merge_settings(
        parse_command_line(
            [
                "--state-dir",
                str(settings.state_dir),
                "--remote-write",
                "http://10.0.0.5:9090/api/v1/write",
                "--remote-write-config",
                str(settings.remote_write_config),
            ]
        )
    )
    layout = StateLayout(settings.state_dir)
    secrets = layout.generated / "prometheus" / "secrets"
    secrets.mkdir(parents=True)
    (secrets / "remote-write-9-basic_auth.password_file").write_text("stale")  # an earlier run's copy
    (secrets / "exporter-password").write_text("kept")  # not ours to remove
    path = write_compose_prometheus_config(layout, OPEN, plan_remote_write(settings))
    config = yaml.safe_load(path.read_text())
    assert config["global"]["external_labels"] == {"host": default_hostname()}
    assert [entry["url"] for entry in config["remote_write"]] == ["http://10.0.0.5:9090/api/v1/write", CENTRAL]
    copy = "remote-write-2-basic_auth.password_file"
    assert config["remote_write"][1]["basic_auth"]["password_file"] == str(CONTAINER_SECRETS / copy)
    assert sorted(os.listdir(secrets)) == ["exporter-password", copy]
    assert (secrets / copy).read_text() == SECRET + "\n"
    assert stat.S_IMODE((secrets / copy).stat().st_mode) == 0o644  # compose's Prometheus runs as nobody
    assert SECRET not in path.read_text()
    check_prometheus_config(path, "--remote-write-config")
    # Without remote write, no copy is left behind.
    write_compose_prometheus_config(layout, OPEN)
    assert sorted(os.listdir(secrets)) == ["exporter-password"]
    assert "remote_write" not in yaml.safe_load(path.read_text())


# -- the dashboards at a central store ------------------------------------------------------------------------


def burn_rate_test(tmp_path, expression: str) -> subprocess.CompletedProcess:
    """promtool evaluates one burn-rate panel's query over what two hosts push: each sends its own objective
    and error ratio, told apart only by the host external label."""
    series = []
    for host, ratio in (("gpu-1", 0.125), ("gpu-2", 0.25)):  # exact in binary, as is 1 - 0.5
        series += [
            {"series": f'swm:slo_objective:ratio{{slo="ttft", host="{host}"}}', "values": "0.5x5"},
            {
                "series": f'swm:slo_error_ratio:rate5m{{slo="ttft", model_name="m", host="{host}"}}',
                "values": f"{ratio}x5",
            },
        ]
    test = {
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": expression,
                        "eval_time": "2m",
                        "exp_samples": [
                            {"labels": f'{{slo="ttft", model_name="m", host="{host}"}}', "value": burn}
                            for host, burn in (("gpu-1", 0.25), ("gpu-2", 0.5))
                        ],
                    }
                ],
            }
        ]
    }
    path = tmp_path / "burn_test.yml"
    path.write_text(yaml.safe_dump(test))
    return subprocess.run([str(PROMTOOL), "test", "rules", str(path)], capture_output=True, text=True)


def test_the_burn_rate_panels_work_across_hosts_that_push(tmp_path):
    from observability.dashboards.queries import SLO_BURN_RATE

    expression = SLO_BURN_RATE[0].expr.replace("$model_name", ".*").replace("$host", ".*")
    result = burn_rate_test(tmp_path, expression)
    assert result.returncode == 0, result.stdout + result.stderr
    # What the panel was before: on(slo) alone matches many objectives to one ratio at a central store.
    before = burn_rate_test(tmp_path, expression.replace("on(slo, host, cluster)", "on(slo)"))
    assert "many-to-many matching not allowed" in before.stdout + before.stderr


def test_the_central_config_passes_promtool_and_evaluates_no_rule_twice():
    central = REPO_ROOT / "deploy" / "fleet" / "prometheus-central.yml"
    result = subprocess.run([str(PROMTOOL), "check", "config", str(central)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rule_files" not in yaml.safe_load(central.read_text())  # the hosts send what their rules made
