"""--config is read with bounds: its size, no anchors or aliases (the alias bomb), no key given twice, and
every refusal one short line, read in well under a second."""

import time
from pathlib import Path

import pytest

from launcher.errors import UsageError
from launcher.settings.config_file import load_config_file

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def refusal(path) -> str:
    started = time.monotonic()
    with pytest.raises(UsageError) as refused:
        load_config_file(path)
    assert time.monotonic() - started < 5
    message = str(refused.value)
    assert "\n" not in message and len(message) < 400, message[:400]
    return message


def write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_an_alias_bomb_is_refused_at_once(tmp_path):
    assert "anchors and aliases" in refusal(write(tmp_path, ALIAS_BOMB))


def test_one_alias_under_another_key_is_refused(tmp_path):
    text = "served-model-name: &big [" + ", ".join(["x" * 1000] * 1000) + "]\ngrace-period: *big\n"
    assert "anchors and aliases" in refusal(write(tmp_path, text))


def test_a_value_that_is_not_one_shows_only_its_start(tmp_path):
    text = "grace-period: [" + ", ".join(["y" * 1000] * 500) + "]\n"
    assert "expected a single value" in refusal(write(tmp_path, text))


def test_a_merge_key_is_refused(tmp_path):
    assert "merge keys" in refusal(write(tmp_path, "compilation-config:\n  <<: {level: 3}\n  level: 1\n"))


@pytest.mark.parametrize(
    "text",
    [
        "grace-period: 3\ngrace_period: 4\n",
        "grace-period: 3\ngrace-period: 4\n",
        "max_model_len: 1\nmax-model-len: 2\n",
    ],
)
def test_a_setting_given_twice_is_refused(tmp_path, text):
    message = refusal(write(tmp_path, text))
    assert "given twice" in message or "name the same setting" in message


def test_a_key_twice_inside_a_vllm_value_is_refused_too(tmp_path):
    assert "given twice" in refusal(write(tmp_path, "compilation-config:\n  level: 3\n  level: 1\n"))


def test_a_config_file_has_a_size_limit(tmp_path):
    assert "larger than 1024 KiB" in refusal(write(tmp_path, "a: " + "x" * (2 * 1024 * 1024) + "\n"))


def test_dev_zero_is_refused_without_reading_it_all():
    assert "larger than 1024 KiB" in refusal(Path("/dev/zero"))


@pytest.mark.parametrize("text", ["a: " + "[" * 5000 + "]" * 5000 + "\n", "grace-period: " + "9" * 10_000 + "\n"])
def test_deep_nesting_and_huge_numbers_are_one_line(tmp_path, text):
    refusal(write(tmp_path, text))


def test_an_ordinary_config_still_loads(tmp_path):
    config = load_config_file(write(tmp_path, "grace-period: 7\nmax-model-len: 2048\ncompilation-config: {level: 3}\n"))
    assert config.launcher == {"grace_period": 7.0}
    assert config.vllm == {"max-model-len": 2048, "compilation-config": {"level": 3}}
