"""Values reach generated files (rules, prometheus.yml, alertmanager.yml, target lists) only through a
serializer, and URLs and names holding control characters are refused in one line before anything starts."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from launcher import defaults
from launcher.errors import EXIT_USAGE, UsageError
from launcher.settings import value_parsers as parse
from launcher.settings.command_line import parse_command_line
from launcher.settings.config_file import load_config_file
from launcher.settings.options import OPTIONS
from launcher.settings.settings import merge_settings
from launcher.state_layout import StateLayout
from observability.files import PROMETHEUS_RULES
from observability.slo_objectives import DEFAULT_OBJECTIVES
from observability.slo_rules import render

INJECTED_RULE = "\n  - name: evil\n    rules:\n      - alert: Injected\n        expr: vector(1)\n"
NASTY = [
    "https://wiki.example/runbooks",
    "https://wiki.example/run books?a=1&b='2'#x",
    'https://wiki.example/"quoted": {yes} [no] # not a comment',
    "https://wiki.example/" + INJECTED_RULE,
    "https://wiki.example/\r\n- alert: Injected",
    "https://wiki.example/{{ $labels.instance }}",
    "https://wiki.example/ü/ß/日本",
    "https://wiki.example/\x00\x07\x1b[31m",
    "https://wiki.example/*anchor &alias !!python/object:os.system",
]
CONTROL = ["\n", "\r", "\t", "\x00", "\x1b", "\x7f", "\x85", "\u2028"]


def shipped_alerts() -> set[str]:
    names = set()
    for path in PROMETHEUS_RULES.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {rule["alert"] for rule in group["rules"] if "alert" in rule}
    return names


# -- item 9: the runbook base URL ----------------------------------------------------------------------


def test_a_runbook_base_url_with_a_newline_is_refused_in_one_line():
    with pytest.raises(UsageError) as refused:
        parse_command_line(["--runbook-base-url", "https://wiki.example/" + INJECTED_RULE, "facebook/opt-125m"])
    assert refused.value.exit_code == EXIT_USAGE
    assert "\n" not in str(refused.value) and "control character" in str(refused.value)
    assert "Injected" not in str(refused.value)  # the value is not echoed


def test_a_runbook_base_url_with_a_newline_is_refused_in_a_config_file_too(tmp_path):
    config = tmp_path / "swm.yaml"
    config.write_text(yaml.safe_dump({"runbook-base-url": "https://wiki.example/" + INJECTED_RULE}))
    with pytest.raises(UsageError) as refused:
        load_config_file(config)
    assert "\n" not in str(refused.value) and "control character" in str(refused.value)


@pytest.mark.parametrize("base", NASTY)
def test_the_rules_carry_any_runbook_base_verbatim_and_nothing_more(tmp_path, base):
    """The value parser is bypassed here: the rules themselves are built as data and dumped by a serializer,
    so even a value that slipped past it cannot add a rule."""
    from launcher.stack.prometheus_rules import write_rules

    settings = replace(
        merge_settings(parse_command_line(["--state-dir", str(tmp_path / "state")])), runbook_base_url=base
    )
    layout = StateLayout(settings.state_dir)
    directory = write_rules(settings, layout)
    alerts = set()
    for path in directory.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                alerts.add(rule["alert"])
                assert rule["annotations"]["runbook_url"] == f"{base}#{rule['alert'].lower()}"
    assert alerts == shipped_alerts()


def test_the_rules_keep_every_shipped_rule_but_the_runbook_urls(tmp_path):
    from launcher.stack.prometheus_rules import write_rules

    base = "https://wiki.example/runbooks"
    settings = replace(
        merge_settings(parse_command_line(["--state-dir", str(tmp_path / "state")])), runbook_base_url=base
    )
    directory = write_rules(settings, StateLayout(settings.state_dir))
    for shipped in PROMETHEUS_RULES.glob("*.yml"):
        expected = yaml.safe_load(shipped.read_text().replace(defaults.RUNBOOK_BASE_URL, base))
        if shipped.name == "slo.yml":
            expected = yaml.safe_load(render(DEFAULT_OBJECTIVES, base))
        assert yaml.safe_load((directory / shipped.name).read_text()) == expected


@pytest.mark.parametrize("base", NASTY)
def test_the_slo_rules_generator_serializes_any_string(base):
    document = yaml.safe_load(render(DEFAULT_OBJECTIVES, base))
    urls = [
        (rule["alert"], rule["annotations"]["runbook_url"])
        for group in document["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert urls and all(url == f"{base}#{alert.lower()}" for alert, url in urls)


# -- the shared parser, and every URL and name option ---------------------------------------------------


@pytest.mark.parametrize("character", CONTROL)
def test_urls_and_names_with_control_characters_are_refused(character):
    for parser, good in ((parse.http_url, "https://example.com/x"), (parse.name, "gpu-host-1"), (parse.path, "/a/b")):
        parser(good)
        with pytest.raises(ValueError) as refused:
            parser(good[:6] + character + good[6:])
        assert "\n" not in str(refused.value) and character not in str(refused.value)


URL_AND_NAME_OPTIONS = {
    "--runbook-base-url": "https://wiki.example/x",
    "--alert-webhook": "https://hooks.example/x",
    "--heartbeat-url": "https://hc.example/x",
    "--exporter-host": "127.0.0.1",
    "--prometheus-host": "127.0.0.1",
    "--advertise-address": "gpu-host-1",
    "--vllm-bin": "vllm",
}


def test_every_option_refuses_a_value_with_a_newline_in_one_line():
    """An option added later is caught here too: whatever its value, a newline in it is refused."""
    for option in OPTIONS:
        if not option.takes_value:
            continue
        good = URL_AND_NAME_OPTIONS.get(option.flag, "/etc/swm/file.yml")
        with pytest.raises(UsageError) as refused:
            parse_command_line([option.flag, good + "\nUser=root", "facebook/opt-125m"])
        assert "\n" not in str(refused.value), option.flag


@pytest.mark.parametrize("field", ["model", "served_model_name", "host"])
def test_vllm_names_with_control_characters_are_refused(field):
    from launcher.vllm_server.target import VllmTarget, check_target

    target = VllmTarget(
        model="facebook/opt-125m",
        host="127.0.0.1",
        host_given=False,
        port=8000,
        tls=False,
        api_key=None,
        served_model_name=None,
        api_server_count=1,
        uds=None,
    )
    with pytest.raises(UsageError) as refused:
        check_target(replace(target, **{field: "opt\n  - alert: Injected"}))
    assert "\n" not in str(refused.value) and "Injected" not in str(refused.value)


# -- the other generated files are built as data ------------------------------------------------------


@pytest.mark.parametrize("url", NASTY)
def test_alertmanager_webhooks_reach_the_config_as_data(tmp_path, url):
    from launcher.stack.alertmanager_config import write_config

    settings = merge_settings(parse_command_line(["--state-dir", str(tmp_path / "state")]))
    settings = replace(settings, alert_webhook=(url,), heartbeat_url=url)
    path = write_config(settings, StateLayout(settings.state_dir))
    config = yaml.safe_load(path.read_text())
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    assert receivers["webhooks"]["webhook_configs"][0]["url"] == url
    assert receivers["heartbeat"]["webhook_configs"][0]["url"] == url
    assert [receiver["name"] for receiver in config["receivers"]] == ["none", "webhooks", "heartbeat"]


def test_target_lists_carry_any_address_as_data(tmp_path):
    from launcher.stack.prometheus_targets import fleet_target_groups, write_fleet_targets, write_target_file

    odd = 'host"\n], "labels": {"job": "evil"}}, {"targets": ["x'
    write_target_file(tmp_path / "vllm.json", [odd])
    assert json.loads((tmp_path / "vllm.json").read_text()) == [{"targets": [odd], "labels": {}}]
    write_fleet_targets(tmp_path / "fleet.json", fleet_target_groups(odd, odd))
    groups = json.loads((tmp_path / "fleet.json").read_text())
    assert [group["labels"]["job"] for group in groups] == ["vllm", "swm-exporter"]


def test_no_generated_text_is_built_by_replacing_inside_a_shipped_file():
    """The one text substitution there was (the runbook base URL pasted into alerts.yml) is gone."""
    source = (Path(__file__).resolve().parents[2] / "launcher" / "stack" / "prometheus_rules.py").read_text()
    assert ".read_text().replace(" not in source
