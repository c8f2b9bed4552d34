import pytest

from launcher.errors import UsageError
from launcher.settings.command_line import parse_command_line
from launcher.settings.config_file import load_config_file
from launcher.settings.settings import load_settings


def write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_launcher_and_vllm_keys_are_split(tmp_path):
    config = load_config_file(write(tmp_path, "grace-period: 7\nmax_restarts: 1\nmax-model-len: 2048\nport: 8001\n"))
    assert config.launcher == {"grace_period": 7.0, "max_restarts": 1}
    assert config.vllm == {"max-model-len": 2048, "port": 8001}


def test_command_line_wins_over_config_over_defaults(tmp_path):
    path = write(tmp_path, "grace-period: 7\nmax-restarts: 1\n")
    settings = load_settings(parse_command_line(["m", "--config", str(path), "--grace-period", "3"]))
    assert settings.grace_period == 3.0  # command line
    assert settings.max_restarts == 1  # config file
    assert settings.health_failures == 3  # default
    assert settings.config_path == path


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("grace-period: soon\n", "key 'grace-period': expected a number of seconds"),
        ("max-restarts: [1, 2]\n", "key 'max-restarts': expected a single value"),
        ("allow-usage-stats: maybe\n", "key 'allow-usage-stats': expected true or false"),
        ("config: other.yaml\n", "key 'config'"),
        ("- a\n- b\n", "must hold a mapping"),
        ("port: [\n", "not valid YAML at line"),
    ],
)
def test_invalid_config_names_the_key_or_the_line(tmp_path, text, fragment):
    with pytest.raises(UsageError) as caught:
        load_config_file(write(tmp_path, text))
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unreadable_config(tmp_path):
    with pytest.raises(UsageError, match="cannot read config file"):
        load_config_file(tmp_path / "missing.yaml")


def test_empty_config_is_fine(tmp_path):
    assert load_config_file(write(tmp_path, "")).launcher == {}


def test_a_removed_option_in_the_config_file_is_refused_with_its_pointer(tmp_path):
    with pytest.raises(UsageError, match=r"key 'slo-itl-p99': --slo-itl-p99 was removed: .*--slo-itl-threshold"):
        load_config_file(write(tmp_path, "slo_itl_p99: 0.25\n"))
