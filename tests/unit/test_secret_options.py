"""A secret option (--api-key, --hf-token) never reaches an argv, a log line or an error message: vLLM gets it
in the environment variable it reads, whichever way it was given."""

import os
from pathlib import Path

import pytest

from launcher.commands import main as main_module
from launcher.errors import UsageError
from launcher.settings.command_line import parse_command_line
from launcher.settings.options import BY_FLAG as LAUNCHER_OPTIONS
from launcher.settings.secret_options import HF_TOKEN, MOVED_FROM_ARGV, SECRET_OPTIONS, split_secrets
from launcher.settings.settings import merge_settings
from launcher.vllm_server.capabilities import VllmCapabilities
from tests.unit.test_vllm_target_and_command import plan

TOKEN = "hf_SecretTokenOfTheUser"
KEY = "sk-SecretKeyOfTheUser"


@pytest.fixture
def caps(caps_0_32) -> VllmCapabilities:
    return VllmCapabilities(caps_0_32.version, {**caps_0_32.arity, "--hf-token": "?"})


def no_secret_in(texts) -> bool:
    return not any(TOKEN in text or KEY in text for text in texts)


@pytest.mark.parametrize(
    "argv",
    [["m", "--hf-token", TOKEN], ["m", f"--hf-token={TOKEN}"], ["--hf_token", TOKEN, "m"]],
)
def test_a_hub_token_on_the_command_line_reaches_vllm_in_its_environment_only(tmp_path, caps, argv):
    invocation = plan(tmp_path, caps, argv)
    assert no_secret_in(invocation.argv)  # the argv is also vllm.log's "starting: ..." line
    assert invocation.env["HF_TOKEN"] == TOKEN
    assert invocation.argv[2] == "m"


def test_a_hub_token_file_reaches_vllm_in_its_environment(tmp_path, caps):
    token_file = tmp_path / "hf-token"
    token_file.write_text(TOKEN + "\n")
    invocation = plan(tmp_path, caps, ["m", "--hf-token-file", str(token_file)], env={"HF_TOKEN": "hf_old"})
    assert invocation.env["HF_TOKEN"] == TOKEN  # the file is more explicit than the environment
    assert no_secret_in(invocation.argv)


def test_a_hub_token_in_the_config_file_is_not_handed_on_in_vllms_config(tmp_path, caps):
    invocation = plan(tmp_path, caps, ["m"], config={"hf_token": TOKEN, "max-model-len": 512})
    assert invocation.env["HF_TOKEN"] == TOKEN
    config_file = Path(invocation.argv[invocation.argv.index("--config") + 1])
    assert TOKEN not in config_file.read_text()


def test_a_bare_hf_token_means_the_stored_login_and_stays(tmp_path, caps):
    invocation = plan(tmp_path, caps, ["m", "--hf-token", "--enforce-eager"])
    assert "--hf-token" in invocation.argv and "--enforce-eager" in invocation.argv


def test_two_different_tokens_are_refused_without_naming_either(tmp_path, caps):
    token_file = tmp_path / "hf-token"
    token_file.write_text("hf_AnotherOne\n")
    moved = {"HF_TOKEN": TOKEN, MOVED_FROM_ARGV: "HF_TOKEN"}  # as the launcher runs itself again
    with pytest.raises(UsageError) as refused:
        plan(tmp_path, caps, ["m", "--hf-token-file", str(token_file)], env=moved)
    assert "more than one Hugging Face token" in str(refused.value)
    assert no_secret_in([str(refused.value)]) and "hf_AnotherOne" not in str(refused.value)


def test_the_launchers_note_about_moved_secrets_does_not_reach_vllm(tmp_path, caps):
    invocation = plan(tmp_path, caps, ["m"], env={"HF_TOKEN": TOKEN, MOVED_FROM_ARGV: "HF_TOKEN"})
    assert MOVED_FROM_ARGV not in invocation.env and invocation.env["HF_TOKEN"] == TOKEN


def test_the_launcher_runs_itself_again_with_the_secrets_in_its_environment(monkeypatch):
    started = {}

    def execve(path, argv, environment):
        started.update(argv=argv, environment=environment)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execve", execve)
    monkeypatch.setenv("HF_TOKEN", "hf_from_the_profile")
    with pytest.raises(SystemExit):
        main_module.hide_secrets(["m", "--hf-token", TOKEN, "--api-key", KEY, "--port", "8001"])
    assert no_secret_in(started["argv"])
    assert started["argv"][-3:] == ["m", "--port", "8001"]
    environment = started["environment"]
    assert (environment["HF_TOKEN"], environment["VLLM_API_KEY"]) == (TOKEN, KEY)  # the command line wins
    assert set(environment[MOVED_FROM_ARGV].split(",")) == {"HF_TOKEN", "VLLM_API_KEY"}


@pytest.mark.parametrize("argv", [["m", "--api-key", "-" + KEY], ["m", "--api-key"], ["m", "--api-key="]])
def test_a_key_that_looks_like_an_option_is_refused_without_echoing_it(argv, capsys, monkeypatch):
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    assert main_module.main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--api-key" in error and "--api-key-file" in error
    assert no_secret_in([error])


def test_the_same_key_after_a_vllm_option_is_not_echoed_in_preflight_either(tmp_path, caps):
    with pytest.raises(UsageError) as refused:
        plan(tmp_path, caps, ["m", "--api-key", "-" + KEY])
    assert no_secret_in([str(refused.value)])


@pytest.mark.parametrize("option", SECRET_OPTIONS, ids=lambda option: option.file_option)
def test_a_secret_file_is_read_with_a_bound(tmp_path, caps, option):
    with pytest.raises(UsageError) as refused:
        plan(tmp_path, caps, ["m", option.file_option, "/dev/zero"])
    message = str(refused.value)
    assert "\n" not in message and "larger than 64 KiB" in message and len(message) < 200


def test_a_secret_with_a_control_character_is_refused_without_echoing_it(tmp_path, caps):
    with pytest.raises(UsageError) as refused:
        plan(tmp_path, caps, ["m"], config={"hf-token": TOKEN + "\x00"})
    assert no_secret_in([str(refused.value)])


def test_split_secrets_knows_each_spelling():
    kept, found = split_secrets(["m", "--hf_token", TOKEN, "--hf-token", "--enforce-eager"])
    assert kept == ["m", "--hf-token", "--enforce-eager"] and found == {HF_TOKEN: [TOKEN]}


@pytest.mark.parametrize("option", SECRET_OPTIONS, ids=lambda option: option.flag)
def test_each_secret_has_its_file_option_in_the_launchers_table(option, tmp_path):
    assert LAUNCHER_OPTIONS[option.file_option].takes_value
    settings = merge_settings(parse_command_line(["m", option.file_option, str(tmp_path / "f")]))
    assert getattr(settings, option.settings_field) == tmp_path / "f"
